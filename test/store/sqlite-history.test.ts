/**
 * The SQLite history table (src/store/sqlite/history.ts) and the embedded store's indexes:
 * pruning by bisection over ids agrees with a plain scan by time, a database made before the
 * indexes changed is brought up to them, and the reads that matter stay index-driven.
 */
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allocationsQuery } from "../../src/store/sqlite/admin-queries.ts";
import { HISTORY_SCHEMA, historyQuery, pruneHistory } from "../../src/store/sqlite/history.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { record } from "./contract.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-sqlite-history-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A small seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test("pruning by bisection over ids deletes exactly what a scan by time would, over gaps, edges, chunks and empty tables", async () => {
  const next = random(7);
  for (let round = 0; round < 200; round++) {
    const db = new Database(":memory:");
    db.exec(HISTORY_SCHEMA);
    const insert = db.prepare("INSERT INTO events (id, at, kind, network, ip) VALUES (?, ?, 'allocated', 'n', '10.0.0.1')");
    const count = Math.floor(next() * 40); // sometimes none
    let id = 1 + Math.floor(next() * 5);
    let at = 1000;
    const ats: number[] = [];
    for (let i = 0; i < count; i++) {
      insert.run(id, at);
      ats.push(at);
      id += 1 + (next() < 0.3 ? Math.floor(next() * 50) : 0); // earlier prunes and rollbacks leave gaps
      at += next() < 0.4 ? 0 : Math.floor(next() * 10); // several events of one commit share a time
    }
    insert.finalize();
    const before = 995 + Math.floor(next() * (at - 990));
    const expected = ats.filter((t) => t < before).length;
    // Chunks of 1 to 6 events and the default: chunk edges fall everywhere.
    expect(await pruneHistory(db, before, { chunk: round % 7 === 6 ? undefined : 1 + (round % 6) })).toBe(expected);
    const left = db.query("SELECT count(*) AS n, min(at) AS oldest FROM events").get() as { n: number; oldest: number | null };
    expect(left.n).toBe(count - expected);
    if (left.oldest !== null) expect(left.oldest).toBeGreaterThanOrEqual(before);
    db.close();
  }
});

test("a large prune goes in chunks, with turns of the event loop between them for the requests that come meanwhile", async () => {
  const db = new Database(":memory:");
  db.exec(HISTORY_SCHEMA);
  const insert = db.prepare("INSERT INTO events (at, kind, network, ip) VALUES (?, 'allocated', 'n', '10.0.0.1')");
  db.transaction(() => {
    for (let i = 0; i < 10_000; i++) insert.run(1000 + i);
  })();
  insert.finalize();
  const count = () => (db.query("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  // What a request answered during the prune would see: taken on each turn it yields.
  const seen: number[] = [];
  let pruning = true;
  const watch = () => {
    if (!pruning) return;
    seen.push(count());
    setImmediate(watch);
  };
  setImmediate(watch);
  expect(await pruneHistory(db, 1000 + 9_000, { chunk: 1_000 })).toBe(9_000);
  pruning = false;
  expect(count()).toBe(1_000);
  // Turns came between the chunks, each seeing one chunk more gone.
  const between = seen.filter((n) => n < 10_000 && n > 1_000);
  expect(between.length).toBeGreaterThanOrEqual(7);
  for (const n of between) expect(n % 1_000).toBe(0);
  db.close();
});

test("a prune stops at its next chunk once the store is closed, and the next prune takes the rest", async () => {
  const path = join(dir, "closing.db");
  const store = await SqliteStore.open(path);
  await store.commit(Array.from({ length: 5_000 }, (_, i) => ({ op: "allocate" as const, record: record(`10.1.${i >> 8}.${i & 255}`, `c${i}`) })));
  const pruning = store.pruneHistory(Date.now() + 1_000);
  await store.close(); // while the prune waits for its second chunk
  const pruned = await pruning; // no error: it ended where it was
  expect(pruned).toBeGreaterThan(0);
  expect(pruned).toBeLessThan(5_000);
  const again = await SqliteStore.open(path);
  expect(await again.pruneHistory(Date.now() + 1_000)).toBe(5_000 - pruned);
  await again.close();
});

test("an event recorded while a prune waits between chunks stays, even with an id the emptied table gave out again", async () => {
  const db = new Database(":memory:");
  db.exec(HISTORY_SCHEMA);
  const insert = db.prepare("INSERT INTO events (at, kind, network, ip) VALUES (?, 'allocated', 'n', '10.0.0.1')");
  for (let i = 0; i < 4; i++) insert.run(1000 + i); // all older than the bound: two chunks of two
  const pruning = pruneHistory(db, 5000, { chunk: 2 });
  // One turn: the prune's second chunk ran just before it, its last (finding none left) runs after.
  await new Promise((resolve) => setImmediate(resolve));
  expect((db.query("SELECT count(*) AS n FROM events").get() as { n: number }).n).toBe(0);
  insert.run(9000); // a pod start answered meanwhile: SQLite gives it id 1 again
  insert.finalize();
  expect(await pruning).toBe(4);
  expect(db.query("SELECT id, at FROM events").all()).toEqual([{ id: 1, at: 9000 }]);
  db.close();
});

/** The plan SQLite would run a query with, one line per step. */
const planOf = (db: Database, sql: string, params: unknown[]): string =>
  (db.query(`EXPLAIN QUERY PLAN ${sql}`).all(...(params as never[])) as { detail: string }[]).map((row) => row.detail).join("\n");

test("a database made before the index change gets the new indexes, keeps its history, and its reads stay on indexes", async () => {
  const path = join(dir, "old.db");
  const store = await SqliteStore.open(path);
  await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
  await store.commit([{ op: "allocate", record: record("10.0.0.3", "c2") }]);
  await store.close();
  // What the previous release made: attachment and container apart, events indexed with their time.
  const old = new Database(path);
  old.exec(`
    DROP INDEX allocations_by_container_attachment;
    CREATE INDEX allocations_by_attachment ON allocations (network, container_id, ifname);
    CREATE INDEX allocations_by_container ON allocations (container_id);
    DROP INDEX events_of_kind; DROP INDEX events_of_ip; DROP INDEX events_of_container; DROP INDEX events_of_pod;
    CREATE INDEX events_by_kind ON events (kind, at);
    CREATE INDEX events_by_ip ON events (ip, at);
    CREATE INDEX events_by_container ON events (container_id, at);
    CREATE INDEX events_by_pod ON events (pod_namespace, pod_name, at);
    CREATE INDEX events_by_time ON events (at);`);
  old.close();

  const reopened = await SqliteStore.open(path);
  expect((await reopened.attachment("net1", { containerID: "c2", ifname: "eth0" })).map((r) => r.ip)).toEqual(["10.0.0.3"]);
  expect((await reopened.history({})).map((e) => e.ip)).toEqual(["10.0.0.3", "10.0.0.2"]);
  const [newest] = await reopened.history({ limit: 1 });
  expect((await reopened.history({ before: { at: newest!.at, id: newest!.id } })).map((e) => e.ip)).toEqual(["10.0.0.2"]);
  await reopened.close();

  const db = new Database(path, { readonly: true });
  const indexes = (db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name").values() as [string][]).map(([name]) => name);
  expect(indexes.filter((name) => name.startsWith("events_"))).toEqual(["events_of_container", "events_of_ip", "events_of_kind", "events_of_pod"]);
  expect(indexes).toContain("allocations_by_container_attachment");
  expect(indexes).not.toContain("allocations_by_attachment");
  expect(indexes).not.toContain("allocations_by_container");

  // An ADD's and a DEL's lookup of an attachment, and an admin's search by container.
  expect(planOf(db, "SELECT * FROM allocations WHERE network = ? AND container_id = ? AND ifname = ?", ["net1", "c1", "eth0"])).toContain("allocations_by_container_attachment");
  const byContainer = allocationsQuery({ containerID: "c1" });
  expect(planOf(db, byContainer.sql, byContainer.params)).toContain("allocations_by_container_attachment");
  // History newest first, whole or by address: read in index order, never sorted afterwards.
  for (const filter of [{}, { ip: "10.0.0.2" }, { ip: "10.0.0.2", before: { at: 0, id: 5 } }, { containerID: "c1" }, { kind: "allocated" as const }]) {
    const { sql, params } = historyQuery(filter);
    const plan = planOf(db, sql, params);
    expect(plan).not.toContain("TEMP B-TREE");
    if (Object.keys(filter).length > 0) expect(plan).toMatch(/USING (COVERING )?INDEX events_of_/);
  }
  db.close();
}, 30_000);
