/**
 * What the Kubernetes-API store keeps on the node, in a small SQLite file (`--db`): the history
 * of what this daemon did, and its range sets' cursors. The API server is not a log store —
 * every object is sent whole to every watcher on each write, and etcd keeps its revisions
 * until compaction — so history (one event per allocation and release, kept for weeks) stays
 * where it is made; and a cursor is this node's allocation order in its own blocks, which no
 * other node reads. Both are written after the API server has the commit they describe.
 * The file's exclusive lock also keeps a second daemon from serving the same node.
 */
import type { Database, Statement } from "bun:sqlite";
import { ErrorCode, IpamError } from "../../errors.ts";
import type { HistoryEvent, HistoryFilter } from "../records.ts";
import { HISTORY_SCHEMA, historyQuery, pruneHistory } from "../sqlite/history.ts";
import { sqliteFault } from "../storage-fault.ts";

const SCHEMA = `${HISTORY_SCHEMA}
CREATE TABLE IF NOT EXISTS cursors (pool TEXT PRIMARY KEY, ip TEXT NOT NULL) WITHOUT ROWID;
`;

/** One history event as written (its id is the database's). */
export type NewEvent = Omit<HistoryEvent, "id">;

export class LocalDb {
  private readonly insertEvent: Statement;
  private readonly upsertCursor: Statement;
  /** Built once: bun:sqlite's transaction() makes a new wrapper on every call otherwise. */
  private readonly recordAll: (events: NewEvent[], cursors: [string, string][]) => void;

  private constructor(
    private readonly db: Database,
    readonly path: string,
  ) {
    this.insertEvent = db.prepare(`INSERT INTO events (at, kind, network, ip, container_id, ifname, pod_namespace, pod_name, pod_uid, cause)
      VALUES ($at, $kind, $network, $ip, $containerID, $ifname, $podNamespace, $podName, $podUid, $cause)`);
    this.upsertCursor = db.prepare("INSERT OR REPLACE INTO cursors VALUES (?, ?)");
    this.recordAll = db.transaction((events: NewEvent[], cursors: [string, string][]) => {
      for (const e of events) this.insertEvent.run(e as never);
      for (const [rangeSet, ip] of cursors) this.upsertCursor.run(rangeSet, ip);
    });
  }

  static async open(path: string): Promise<LocalDb> {
    const { Database } = await import("bun:sqlite");
    const { chmodSync, closeSync, existsSync, openSync } = await import("node:fs");
    let db: Database | undefined;
    try {
      if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
      chmodSync(path, 0o600);
      db = new Database(path, { create: true, strict: true });
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      // The API server has the commit already: a lost event is history's loss, never an address's.
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("BEGIN IMMEDIATE; COMMIT");
      db.exec(SCHEMA);
    } catch (err) {
      db?.close(true);
      if ((err as { code?: string }).code === "SQLITE_BUSY") throw new IpamError(ErrorCode.IoFailure, `cannot open ${path}: a daemon already serves this node (its local database is locked)`);
      throw sqliteFault(path, err) ?? err;
    }
    return new LocalDb(db, path);
  }

  /** Events and cursors of one commit, in one transaction. */
  record(events: NewEvent[], cursors: [string, string][]): void {
    if (events.length === 0 && cursors.length === 0) return;
    try {
      this.recordAll(events, cursors);
    } catch (err) {
      throw sqliteFault(this.path, err) ?? err;
    }
  }

  cursors(): Map<string, string> {
    return new Map(this.db.query("SELECT pool, ip FROM cursors").values() as [string, string][]);
  }

  history(filter: HistoryFilter): HistoryEvent[] {
    const { sql, params } = historyQuery(filter);
    return this.db.query(sql).all(...params) as HistoryEvent[];
  }

  pruneHistory(before: number): number {
    return pruneHistory(this.db, before);
  }

  close(): void {
    this.insertEvent.finalize();
    this.upsertCursor.finalize();
    this.db.close(true);
  }
}
