/**
 * Group commit for the embedded store: concurrent commits share one transaction, each caller's
 * changes in a savepoint of their own (one failing caller does not fail the others), and one
 * fsync covers them all (WAL, synchronous=FULL: durable before acknowledged). Nothing waits on
 * a timer: the batch is flushed on the next turn of the event loop, collecting whatever
 * requests arrived meanwhile.
 */
import type { Database, Statement } from "bun:sqlite";
import type { Change } from "../store.ts";
import type { SqliteChanges } from "./changes.ts";

interface Pending {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SqliteGroupCommit {
  private queue: Pending[] = [];
  private flushScheduled = false;
  closed = false;
  onCommit: ((seconds: number, callers: number) => void) | undefined;
  private readonly begin: Statement;
  private readonly commitStatement: Statement;
  private readonly rollback: Statement;
  private readonly savepoint: Statement;
  private readonly releaseSavepoint: Statement;
  private readonly rollbackSavepoint: Statement;

  constructor(
    private readonly db: Database,
    private readonly changes: SqliteChanges,
    /** An SQLite error as the StorageFault it stands for, or as it is. */
    private readonly fault: (err: unknown) => unknown,
    prepare: (sql: string) => Statement,
  ) {
    // Prepared once: db.exec would parse them again for every caller of every commit.
    this.begin = prepare("BEGIN IMMEDIATE");
    this.commitStatement = prepare("COMMIT");
    this.rollback = prepare("ROLLBACK");
    this.savepoint = prepare("SAVEPOINT caller");
    this.releaseSavepoint = prepare("RELEASE caller");
    this.rollbackSavepoint = prepare("ROLLBACK TO caller");
  }

  commit(changes: Change[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs what is queued now (close() does, before the statements go). */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const failed = new Map<Pending, unknown>();
    const cursors = new Map<string, string>();
    const now = Date.now();
    const started = performance.now();
    try {
      this.begin.run();
      for (const pending of batch) {
        // A caller's cursor moves only if its changes commit; a lone caller needs no savepoint.
        const mine = new Map<string, string>();
        if (batch.length > 1) this.savepoint.run();
        try {
          this.changes.applyAll(pending.changes, now, mine);
          if (batch.length > 1) this.releaseSavepoint.run();
          for (const [rangeSet, ip] of mine) cursors.set(rangeSet, ip);
        } catch (err) {
          if (batch.length > 1) {
            this.rollbackSavepoint.run();
            this.releaseSavepoint.run();
          }
          failed.set(pending, this.fault(err));
        }
      }
      for (const [rangeSet, ip] of cursors) this.changes.writeCursor(rangeSet, ip);
      if (failed.size === batch.length && batch.length === 1) this.rollback.run();
      else this.commitStatement.run();
      this.onCommit?.((performance.now() - started) / 1000, batch.length);
    } catch (err) {
      const fault = this.fault(err);
      try {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
      } catch {
        // the rollback of a failed commit failing too changes nothing: the batch failed whole
      }
      for (const pending of batch) pending.reject(fault);
      return;
    }
    for (const pending of batch) {
      if (failed.has(pending)) pending.reject(failed.get(pending));
      else pending.resolve();
    }
  }
}
