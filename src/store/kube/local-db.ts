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
/** What one commit leaves here: its events and the range sets' cursors it moved. */
interface Recorded {
  events: NewEvent[];
  cursors: [string, string][];
}

export class LocalDb {
  private readonly insertEvent: Statement;
  private readonly upsertCursor: Statement;
  /** Built once: bun:sqlite's transaction() makes a new wrapper on every call otherwise. */
  private readonly recordAll: (commits: Recorded[]) => void;
  /** What record() was given and is not written yet (see there). */
  private queued: Recorded[] = [];
  private writeScheduled = false;
  /** Set by close(): a prune under way stops at its next chunk. */
  private closed = false;

  private constructor(
    private readonly db: Database,
    readonly path: string,
  ) {
    this.insertEvent = db.prepare(`INSERT INTO events (at, kind, network, ip, container_id, ifname, pod_namespace, pod_name, pod_uid, cause)
      VALUES ($at, $kind, $network, $ip, $containerID, $ifname, $podNamespace, $podName, $podUid, $cause)`);
    this.upsertCursor = db.prepare("INSERT OR REPLACE INTO cursors VALUES (?, ?)");
    this.recordAll = db.transaction((commits: Recorded[]) => {
      for (const { events, cursors } of commits) {
        for (const e of events) this.insertEvent.run(e as never);
        for (const [rangeSet, ip] of cursors) this.upsertCursor.run(rangeSet, ip);
      }
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

  /**
   * Events and cursors of one commit the API server has. They are written just after the
   * commit's callers are answered, in one transaction with any others queued meanwhile: the
   * write (~0.15 ms when the node is otherwise idle) is off a pod start's path. Every read
   * here writes what is queued first, so none reads around them; a crash in between loses
   * that history, never an address (as a lost file would).
   */
  record(events: NewEvent[], cursors: [string, string][]): void {
    if (events.length === 0 && cursors.length === 0) return;
    this.queued.push({ events, cursors });
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(() => this.writeQueued());
  }

  /** Writes what record() queued: how many commits' worth (none when the database refused: that history is lost). */
  writeQueued(): number {
    this.writeScheduled = false;
    const commits = this.queued.splice(0);
    if (commits.length === 0) return 0;
    try {
      this.recordAll(commits);
      return commits.length;
    } catch {
      // The API server has the commits: a local database that cannot write loses their history, not them.
      return 0;
    }
  }

  cursors(): Map<string, string> {
    this.writeQueued();
    return new Map(this.db.query("SELECT pool, ip FROM cursors").values() as [string, string][]);
  }

  history(filter: HistoryFilter): HistoryEvent[] {
    this.writeQueued();
    const { sql, params } = historyQuery(filter);
    return this.db.query(sql).all(...params) as HistoryEvent[];
  }

  pruneHistory(before: number): Promise<number> {
    this.writeQueued();
    return pruneHistory(this.db, before, { open: () => !this.closed });
  }

  close(): void {
    this.closed = true;
    this.writeQueued();
    this.insertEvent.finalize();
    this.upsertCursor.finalize();
    this.db.close(true);
  }
}
