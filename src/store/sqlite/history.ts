/**
 * The history table of both SQLite files that keep one: the embedded store's database and the
 * Kubernetes-API store's local one (kube/local-db.ts). An event is written with every ADD and
 * DEL, so what it costs to write is paid on every pod start: each index is on its own columns
 * only. SQLite ends every index entry with the row's id, and ids grow in the order events are
 * recorded, so an index on `ip` already lists one address's events in order, and the table
 * itself is the list of all events in order: no index on the time is needed (five b-trees
 * written per event where there were six, and each index entry shorter).
 *
 * So "newest first" is the order events were recorded in. `at` is the wall clock when they
 * were: after a clock step backwards the two differ for the events around it, and pruning by
 * time (bisection over ids, below) may keep or drop those few a moment early or late.
 */
import type { Database } from "bun:sqlite";
import type { HistoryFilter } from "../records.ts";
import { equalities, type Param } from "./where.ts";

export const HISTORY_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  network TEXT NOT NULL,
  ip TEXT NOT NULL,
  container_id TEXT,
  ifname TEXT,
  pod_namespace TEXT,
  pod_name TEXT,
  pod_uid TEXT,
  cause TEXT
);
DROP INDEX IF EXISTS events_by_kind;
DROP INDEX IF EXISTS events_by_ip;
DROP INDEX IF EXISTS events_by_container;
DROP INDEX IF EXISTS events_by_pod;
DROP INDEX IF EXISTS events_by_time;
CREATE INDEX IF NOT EXISTS events_of_kind ON events (kind);
CREATE INDEX IF NOT EXISTS events_of_ip ON events (ip);
CREATE INDEX IF NOT EXISTS events_of_container ON events (container_id);
CREATE INDEX IF NOT EXISTS events_of_pod ON events (pod_namespace, pod_name);
`;

/** SELECT of history events matching every given field, newest first, older than `before`. */
export function historyQuery(filter: HistoryFilter): { sql: string; params: Param[] } {
  const columns: [keyof HistoryFilter, string][] = [
    ["ip", "ip"],
    ["containerID", "container_id"],
    ["podNamespace", "pod_namespace"],
    ["podName", "pod_name"],
    ["kind", "kind"],
  ];
  const { conditions, params } = equalities(columns, filter);
  if (filter.before) {
    conditions.push("id < ?");
    params.push(filter.before.id);
  }
  const sql = `SELECT id, at, kind, network, ip, container_id AS containerID, ifname, pod_namespace AS podNamespace,
    pod_name AS podName, pod_uid AS podUid, cause FROM events
    ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
  params.push(filter.limit ?? 100);
  return { sql, params };
}

/**
 * Events deleted per statement. Pruning runs on the event loop that answers the plugin, and a
 * million events in one statement held it 2.7 s here (past the plugin's 2.5 s deadline: a
 * lowered retention's first sweep would fail the pod starts meanwhile); 2,000 take ~6 ms, and
 * 40–150 ms when a WAL checkpoint falls on one (a checkpoint every ~1,000 pages deleted).
 */
export const PRUNE_CHUNK = 2_000;

/**
 * Deletes the events recorded before `before` (ms); returns how many. They are the ids below
 * the first event that is not older, found by bisection over the ids (~25 lookups for a
 * million events), since no index orders the table by time. They go `chunk` at a time, oldest
 * first, with a turn of the event loop between chunks, so requests are answered meanwhile; a
 * database closed meanwhile (`open` false) ends it there, the rest left to the next prune.
 * Events recorded meanwhile get higher ids than the bound found at the start, but for one
 * case: an emptied table gives out ids from 1 again. So each chunk also asks for the events'
 * time, and a new event below the bound stays.
 */
export async function pruneHistory(db: Database, before: number, options: { chunk?: number; open?: () => boolean } = {}): Promise<number> {
  const { open = () => true } = options;
  const chunk = Math.max(1, Math.floor(options.chunk ?? PRUNE_CHUNK));
  if (!open()) return 0;
  const end = firstKept(db, before);
  if (end === null) return 0;
  let pruned = 0;
  while (open()) {
    // Each chunk prepares and finalizes its own statements: none is open across the turn,
    // during which the database may be closed.
    const step = deleteChunk(db, end, before, chunk);
    pruned += step.deleted;
    if (step.done) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return pruned;
}

/** The id of the first event recorded at or after `before` (max(id) + 1 when every event is older); null when there are no events. */
function firstKept(db: Database, before: number): number | null {
  const bounds = db.prepare("SELECT min(id) AS lo, max(id) AS hi FROM events");
  const firstFrom = db.prepare("SELECT id, at FROM events WHERE id >= ? ORDER BY id LIMIT 1");
  try {
    const { lo: min, hi: max } = bounds.get() as { lo: number | null; hi: number | null };
    if (min === null || max === null) return null;
    // The first id that stays lies in [lo, hi]; hi = max + 1 means every event goes.
    let lo = min;
    let hi = max + 1;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const event = firstFrom.get(mid) as { id: number; at: number }; // mid ≤ max: there is one
      if (event.at < before) lo = event.id + 1;
      else hi = mid; // no event has an id in [mid, event.id)
    }
    return lo;
  } finally {
    bounds.finalize();
    firstFrom.finalize();
  }
}

/**
 * Deletes up to `chunk` of the oldest events below id `end` recorded before `before`; done
 * when fewer were left (when exactly `chunk` were, the next call finds none and is done).
 */
function deleteChunk(db: Database, end: number, before: number, chunk: number): { deleted: number; done: boolean } {
  const last = db.prepare("SELECT id FROM events WHERE id < ? AND at < ? ORDER BY id LIMIT 1 OFFSET ?");
  const below = db.prepare("DELETE FROM events WHERE id < ? AND at < ?");
  try {
    // The chunk's last id, if that many are left: the chunk ends just past it; else at `end`.
    const row = last.get(end, before, chunk - 1) as { id: number } | null;
    return { deleted: below.run(row ? row.id + 1 : end, before).changes, done: row === null };
  } finally {
    last.finalize();
    below.finalize();
  }
}
