/** The sqlite store's group commit: what a failing caller leaves behind, alone or in a batch. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { record } from "./contract.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-group-commit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open = () => SqliteStore.open(join(dir, `gc-${n++}.db`));

test("a lone caller that fails part-way leaves no allocation, event or cursor of its own", async () => {
  const store = await open();
  await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.2" }]);
  await expect(
    store.commit([
      { op: "allocate", record: record("10.0.0.3", "c2") },
      { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.3" },
      { op: "allocate", record: record("10.0.0.2", "c2") },
    ]),
  ).rejects.toThrow();
  expect(await store.attachment("net1", { containerID: "c2", ifname: "eth0" })).toEqual([]);
  expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.0.2"]]));
  expect((await store.history({ ip: "10.0.0.3" })).length).toBe(0);
  // The store keeps working after the rollback.
  await store.commit([{ op: "allocate", record: record("10.0.0.3", "c3") }]);
  expect((await store.attachment("net1", { containerID: "c3", ifname: "eth0" })).map((r) => r.ip)).toEqual(["10.0.0.3"]);
  await store.close();
}, 30_000);

test("in one batch, a cursor moves with the last caller that committed, never with one that failed", async () => {
  const store = await open();
  await store.commit([{ op: "allocate", record: record("10.0.0.9", "c0") }]);
  const batches: number[] = [];
  store.onCommit = (_, callers) => batches.push(callers);
  const results = await Promise.allSettled([
    store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.2" }]),
    store.commit([{ op: "allocate", record: record("10.0.0.3", "c2") }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.3" }]),
    store.commit([{ op: "cursor", rangeSet: "net1|p", ip: "10.0.0.9" }, { op: "allocate", record: record("10.0.0.9", "c3") }]),
    store.commit([{ op: "cursor", rangeSet: "net1|q", ip: "10.0.1.1" }]),
  ]);
  expect(batches).toEqual([4]); // the four callers really shared one commit
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
  expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.0.3"], ["net1|q", "10.0.1.1"]]));
  await store.close();
}, 30_000);

test("attachment() lists an attachment's addresses by family, then address", async () => {
  const store = await open();
  const key = { containerID: "dual", ifname: "eth0" };
  await store.commit([
    { op: "allocate", record: record("fd00::2", "dual") },
    { op: "allocate", record: record("10.0.0.20", "dual") },
    { op: "allocate", record: record("10.0.0.3", "dual", { space: "other" }) },
  ]);
  expect((await store.attachment("net1", key)).map((r) => r.ip)).toEqual(["10.0.0.20", "10.0.0.3", "fd00::2"]);
  await store.close();
}, 30_000);
