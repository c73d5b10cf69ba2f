/**
 * The Kubernetes-API store's local database: a commit's history is written just after its
 * callers are answered, yet no read ever misses it — every read, and closing, writes what is
 * queued first — and cursors kept there survive a restart.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { LocalDb, type NewEvent } from "../../src/store/kube/local-db.ts";
import { cleanup, tempDir } from "../e2e/harness.ts";

afterAll(cleanup);

const event = (ip: string, containerID: string): NewEvent => ({
  at: 1_700_000_000_000, kind: "allocated", network: "n", ip, containerID, ifname: "eth0", podNamespace: null, podName: null, podUid: null, cause: "cni add",
});

test("a commit's events are read back at once, though written after; closing writes what is queued", async () => {
  const path = join(tempDir("ipamd-local-db-"), "local.db");
  const db = await LocalDb.open(path);
  db.record([event("10.0.0.2", "a")], [["rs", "10.0.0.2"]]);
  db.record([event("10.0.0.3", "b")], [["rs", "10.0.0.3"]]);
  // Read in the same turn as the records: nothing is written yet, and the read writes it.
  expect(db.history({ ip: "10.0.0.3" }).map((e) => e.containerID)).toEqual(["b"]);
  db.record([event("10.0.0.4", "c")], [["rs", "10.0.0.4"]]);
  expect(db.cursors()).toEqual(new Map([["rs", "10.0.0.4"]]));
  db.record([event("10.0.0.5", "d")], []);
  db.close();
  const again = await LocalDb.open(path);
  expect(again.history({}).map((e) => e.containerID).sort()).toEqual(["a", "b", "c", "d"]);
  again.close();
});

test("queued events are written together after the turn that recorded them, left alone", async () => {
  const db = await LocalDb.open(join(tempDir("ipamd-local-db-"), "local.db"));
  db.record([event("10.0.0.2", "a")], []);
  db.record([event("10.0.0.3", "b")], []);
  expect(db.writeQueued()).toBe(2);
  db.record([event("10.0.0.4", "c")], []);
  await new Promise((resolve) => setImmediate(resolve));
  expect(db.writeQueued()).toBe(0);
  expect(db.history({}).map((e) => e.containerID).sort()).toEqual(["a", "b", "c"]);
  db.close();
});

test("a prune stops at its next chunk once the database is closed, and the next prune takes the rest", async () => {
  const path = join(tempDir("ipamd-local-db-"), "local.db");
  const db = await LocalDb.open(path);
  db.record(Array.from({ length: 5_000 }, (_, i) => event(`10.1.${i >> 8}.${i & 255}`, `c${i}`)), []);
  const pruning = db.pruneHistory(1_800_000_000_000);
  db.close(); // while the prune waits for its second chunk
  const pruned = await pruning; // no error: it ended where it was
  expect(pruned).toBeGreaterThan(0);
  expect(pruned).toBeLessThan(5_000);
  const again = await LocalDb.open(path);
  expect(await again.pruneHistory(1_800_000_000_000)).toBe(5_000 - pruned);
  again.close();
});
