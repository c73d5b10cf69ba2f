import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { record, storeContract } from "./contract.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-sqlite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const paths = new WeakMap<Store, string>();
let n = 0;

storeContract("sqlite", {
  async open() {
    const path = join(dir, `store-${n++}.db`);
    const store = await SqliteStore.open(path);
    paths.set(store, path);
    return store;
  },
  async reopen(store) {
    await store.close();
    return SqliteStore.open(paths.get(store)!);
  },
});

describe("sqlite specifics", () => {
  test("a second daemon cannot open a database in use", async () => {
    const path = join(dir, "locked.db");
    const first = await SqliteStore.open(path);
    await expect(SqliteStore.open(path)).rejects.toThrow(/locked/);
    await first.close();
    const second = await SqliteStore.open(path);
    await second.close();
  }, 30_000);

  test("every allocation and release is a history event", async () => {
    const path = join(dir, "events.db");
    const store = await SqliteStore.open(path);
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
    await store.commit([{ op: "release", record: record("10.0.0.2", "c1"), cause: "cni del" }]);
    await store.close();
    const { Database } = await import("bun:sqlite");
    const db = new Database(path, { readonly: true });
    const events = db.query("SELECT kind, ip, container_id, pod_name, cause FROM events ORDER BY id").all();
    db.close();
    expect(events).toEqual([
      { kind: "allocated", ip: "10.0.0.2", container_id: "c1", pod_name: "pod-c1", cause: "cni add" },
      { kind: "released", ip: "10.0.0.2", container_id: "c1", pod_name: "pod-c1", cause: "cni del" },
    ]);
  }, 30_000);
});
