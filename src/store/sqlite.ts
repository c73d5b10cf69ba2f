/**
 * The embedded store: bun:sqlite in WAL mode with synchronous=FULL, so a commit is on disk
 * before it is acknowledged. Concurrent commits share one transaction (group commit): each
 * caller's changes run in their own savepoint, so one failing caller does not fail the
 * others, and one fsync covers them all. Nothing waits on a timer: the batch is flushed on
 * the next turn of the event loop, collecting whatever requests arrived meanwhile.
 */
import type { Database, Statement } from "bun:sqlite";
import type { Family } from "../ipam/address.ts";
import type { AttachmentKey } from "../protocol.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import { allocationsQuery, historyQuery, type Row, toRecord } from "./sqlite/admin-queries.ts";
import { ipOrder, migrate, SCHEMA } from "./sqlite/schema.ts";
import { fileFault, sqliteFault, type StorageFault } from "./storage-fault.ts";
import { type AllocationFilter, type AllocationRecord, type Binding, byAddress, type Change, ConflictError, type Cooling, type HistoryEvent, type HistoryFilter, type Store, type SubnetChooser } from "./store.ts";

interface Pending {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
}


export class SqliteStore implements Store {
  readonly commitCapacity = Number.POSITIVE_INFINITY;
  private queue: Pending[] = [];
  /** Told of each group commit: how long it took and how many callers it served. */
  onCommit: ((seconds: number, callers: number) => void) | undefined;
  private flushScheduled = false;
  private closed = false;
  private readonly statements: Statement[] = [];
  private readonly insertAllocation: Statement;
  private readonly recordEvent: Statement;
  private readonly recordRelease: Statement;
  private readonly deleteAllocation: Statement;
  private readonly upsertCursor: Statement;
  private readonly insertCooling: Statement;
  private readonly deleteCooling: Statement;
  private readonly upsertBinding: Statement;
  private readonly deleteBinding: Statement;
  private readonly selectAttachment: Statement;
  private readonly selectAttachments: Statement;
  private readonly selectHolders: Statement;
  private readonly begin: Statement;
  private readonly commitStatement: Statement;
  private readonly rollback: Statement;
  private readonly savepoint: Statement;
  private readonly releaseSavepoint: Statement;
  private readonly rollbackSavepoint: Statement;

  private constructor(
    private readonly db: Database,
    /** The database file: named in every storage fault. */
    readonly path: string,
    /** Throws the system's reason when the database's directory cannot be written. */
    private readonly writable: () => void,
  ) {
    const prepare = (sql: string) => {
      const statement = db.prepare(sql);
      this.statements.push(statement);
      return statement;
    };
    this.insertAllocation = prepare(
      `INSERT INTO allocations (space, network, ip, family, prefix, gateway, pool, container_id, ifname, netns,
        pod_namespace, pod_name, pod_uid, node, created_at, static, ip_order)
       VALUES ($space, $network, $ip, $family, $prefix, $gateway, $pool, $containerID, $ifname, $netns,
        $podNamespace, $podName, $podUid, $node, $createdAt, $static, $ipOrder)`,
    );
    this.recordEvent = prepare(
      `INSERT INTO events (at, kind, network, ip, container_id, ifname, pod_namespace, pod_name, pod_uid, cause)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.recordRelease = prepare(
      `INSERT INTO events (at, kind, network, ip, container_id, ifname, pod_namespace, pod_name, pod_uid, cause)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // One b-tree search per release: the event is written from the row the DELETE returns.
    this.deleteAllocation = prepare("DELETE FROM allocations WHERE space = ? AND ip = ? RETURNING network, container_id, ifname, pod_namespace, pod_name, pod_uid");
    this.upsertCursor = prepare("INSERT INTO cursors VALUES (?, ?) ON CONFLICT (pool) DO UPDATE SET ip = excluded.ip");
    this.insertCooling = prepare("INSERT OR REPLACE INTO cooling VALUES (?, ?, ?, ?)");
    this.deleteCooling = prepare("DELETE FROM cooling WHERE space = ? AND ip = ?");
    this.upsertBinding = prepare("INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?)");
    this.deleteBinding = prepare("DELETE FROM bindings WHERE space = ? AND pod = ?");
    this.selectAttachment = prepare("SELECT * FROM allocations WHERE network = ? AND container_id = ? AND ifname = ?");
    this.selectAttachments = prepare("SELECT DISTINCT container_id, ifname FROM allocations WHERE network = ?");
    this.selectHolders = prepare("SELECT * FROM allocations WHERE ip = ?");
    // Prepared once: db.exec would parse them again for every caller of every commit.
    this.begin = prepare("BEGIN IMMEDIATE");
    this.commitStatement = prepare("COMMIT");
    this.rollback = prepare("ROLLBACK");
    this.savepoint = prepare("SAVEPOINT caller");
    this.releaseSavepoint = prepare("RELEASE caller");
    this.rollbackSavepoint = prepare("ROLLBACK TO caller");
  }

  /**
   * bun:sqlite is imported here, lazily, so the plugin's start-up never loads it. The files are
   * made private first: they name every pod on the node. SQLite gives a new -wal and -shm the
   * database file's own mode, so a 0600 database keeps them 0600 too.
   */
  static async open(path: string): Promise<SqliteStore> {
    const { Database } = await import("bun:sqlite");
    const { accessSync, chmodSync, closeSync, constants, existsSync, openSync } = await import("node:fs");
    const { dirname } = await import("node:path");
    try {
      if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
      for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
    } catch (err) {
      throw fileFault(path, err) ?? new IpamError(ErrorCode.IoFailure, `store ${path}: cannot create or protect the database file: ${(err as Error).message}`);
    }
    const writable = () => accessSync(dirname(path), constants.W_OK);
    let db: Database | undefined;
    try {
      db = new Database(path, { create: true, strict: true });
      // One daemon per database: the exclusive lock makes a second one fail at once instead
      // of handing out addresses from a stale in-memory index.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      db.exec("BEGIN IMMEDIATE; COMMIT"); // takes the exclusive lock now, not at the first ADD
      db.exec(SCHEMA);
      migrate(db);
      // Savepoints and sorts stay in memory: as files they cost a create and unlink each time.
      db.exec("PRAGMA temp_store = MEMORY");
    } catch (err) {
      db?.close(true);
      if ((err as { code?: string }).code === "SQLITE_BUSY") throw new IpamError(ErrorCode.IoFailure, `cannot open store ${path}: a daemon already serves store ${path} (its database is locked)`);
      throw sqliteFault(path, err, writable) ?? err;
    }
    return new SqliteStore(db, path, writable);
  }

  /** An SQLite error as the StorageFault it stands for, or as it is. */
  private fault(err: unknown): StorageFault | unknown {
    return sqliteFault(this.path, err, this.writable) ?? err;
  }

  /** Runs a read, naming a storage failure as one (the admin and CNI paths both read). */
  private read<T>(run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw this.fault(err);
    }
  }

  /** A small durable write of its own: whether the store can persist right now. */
  async probe(): Promise<void> {
    try {
      this.db.transaction(() => this.once("INSERT OR REPLACE INTO health VALUES (1, ?)", (s) => s.run(Date.now()))).immediate();
    } catch (err) {
      throw this.fault(err);
    }
  }

  /** Runs a one-off query and finalizes it, so no statement outlives close(). */
  private once<T>(sql: string, run: (statement: Statement) => T): T {
    return this.read(() => {
      const statement = this.db.prepare(sql);
      try {
        return run(statement);
      } finally {
        statement.finalize();
      }
    });
  }

  async forEachAllocated(visit: (space: string, family: Family, ip: string, held: boolean) => void): Promise<void> {
    // Row by row: materialising a million rows first costs twice the time and memory. Only
    // space and ip, so the scan reads the small covering index allocations_by_ip, not every
    // row's sixteen columns; the family is the address's own (only IPv6 is written with ':').
    this.once("SELECT space, ip FROM allocations", (s) => {
      for (const row of s.iterate() as IterableIterator<{ space: string; ip: string }>) visit(row.space, row.ip.includes(":") ? 6 : 4, row.ip, false);
    });
    this.once("SELECT space, ip FROM cooling UNION ALL SELECT space, ip FROM bindings WHERE released_at IS NOT NULL", (s) => {
      for (const row of s.iterate() as IterableIterator<{ space: string; ip: string }>) visit(row.space, row.ip.includes(":") ? 6 : 4, row.ip, true);
    });
  }

  async cursors(): Promise<Map<string, string>> {
    return this.once("SELECT pool, ip FROM cursors", (s) => new Map(s.values() as [string, string][]));
  }

  async cooling(): Promise<Cooling[]> {
    return this.once("SELECT space, family, ip, until FROM cooling ORDER BY until", (s) => s.all() as Cooling[]);
  }

  async bindings(): Promise<Binding[]> {
    return this.once("SELECT space, pod, family, ip, released_at AS releasedAt FROM bindings ORDER BY released_at", (s) => s.all() as Binding[]);
  }

  async attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    const rows = this.read(() => this.selectAttachment.all(network, key.containerID, key.ifname) as Row[]);
    // Ordered here, not by SQL: an ORDER BY would build a temporary b-tree for a row or two.
    const records = rows.map(toRecord);
    if (records.length > 1) records.sort(byAddress);
    return records;
  }

  async attachments(network: string, node?: string): Promise<AttachmentKey[]> {
    const rows = node === undefined ? this.read(() => this.selectAttachments.values(network) as [string, string][]) : this.once("SELECT DISTINCT container_id, ifname FROM allocations WHERE network = ? AND node = ?", (s) => s.values(network, node) as [string, string][]);
    return rows.map(([containerID, ifname]) => ({ containerID, ifname }));
  }

  async holders(ip: string): Promise<AllocationRecord[]> {
    return this.read(() => this.selectHolders.all(ip) as Row[]).map(toRecord);
  }

  async allocations(filter: AllocationFilter): Promise<AllocationRecord[]> {
    const { sql, params } = allocationsQuery(filter);
    return this.once(sql, (s) => (s.all(...params) as Row[]).map(toRecord));
  }

  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    const { sql, params } = historyQuery(filter);
    return this.once(sql, (s) => s.all(...params) as HistoryEvent[]);
  }

  async pruneHistory(before: number): Promise<number> {
    return this.once("DELETE FROM events WHERE at < ?", (s) => s.run(before).changes);
  }

  async netnsAllocations(node: string): Promise<AllocationRecord[]> {
    return this.once("SELECT * FROM allocations WHERE node = ? AND netns IS NOT NULL AND netns != ''", (s) => (s.all(node) as Row[]).map(toRecord));
  }

  async claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    // bun:sqlite is synchronous, so this transaction cannot interleave with a group commit.
    return this.db.transaction(() => {
      const claims = this.once("SELECT subnet, node FROM node_subnets WHERE pool = ?", (s) => s.all(pool) as { subnet: string; node: string }[]);
      const mine = claims.find((c) => c.node === node)?.subnet ?? null;
      const others = claims.filter((c) => c.node !== node).map((c) => c.subnet);
      const chosen = choose(others, mine);
      if (chosen === mine) return mine;
      this.once("DELETE FROM node_subnets WHERE pool = ? AND node = ?", (s) => s.run(pool, node));
      if (chosen !== null) this.once("INSERT INTO node_subnets VALUES (?, ?, ?)", (s) => s.run(pool, chosen, node));
      return chosen;
    }).immediate();
  }

  async nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    return this.once("SELECT node, subnet FROM node_subnets WHERE pool = ? ORDER BY subnet", (s) => s.all(pool) as { node: string; subnet: string }[]);
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

  /** cursors: where a cursor change goes; only the last one per pool is written, once per commit. */
  private apply(change: Change, now: number, cursors: Map<string, string>): void {
    switch (change.op) {
      case "allocate": {
        const r = change.record;
        try {
          this.insertAllocation.run({ ...r, static: r.static ? 1 : 0, ipOrder: ipOrder(r.ip) });
        } catch (err) {
          // Held already: the same answer a shared store gives, so the caller learns it and
          // picks again instead of failing the pod with a constraint message.
          if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") throw new ConflictError([{ space: r.space, family: r.family, ip: r.ip }]);
          throw err;
        }
        const kind = change.kind ?? (r.static ? "static" : "allocated");
        this.recordEvent.run(now, kind, r.network, r.ip, r.containerID, r.ifname, r.podNamespace, r.podName, r.podUid, change.cause ?? "cni add");
        break;
      }
      case "release":
      {
        const [row] = this.deleteAllocation.values(change.space, change.ip) as [string, string, string, string | null, string | null, string | null][];
        if (row) this.recordRelease.run(now, change.kind ?? "released", row[0], change.ip, row[1], row[2], row[3], row[4], row[5], change.cause);
        break;
      }
      case "cursor":
        cursors.set(change.pool, change.ip);
        break;
      case "cool":
        this.insertCooling.run(change.cooling.space, change.cooling.ip, change.cooling.family, change.cooling.until);
        break;
      case "uncool":
        this.deleteCooling.run(change.space, change.ip);
        break;
      case "bind": {
        const b = change.binding;
        this.upsertBinding.run(b.space, b.pod, b.family, b.ip, b.releasedAt);
        break;
      }
      case "unbind":
        this.deleteBinding.run(change.space, change.pod);
        break;
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return; // close() already flushed what was queued
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
          for (const change of pending.changes) this.apply(change, now, mine);
          if (batch.length > 1) this.releaseSavepoint.run();
          for (const [pool, ip] of mine) cursors.set(pool, ip);
        } catch (err) {
          if (batch.length > 1) {
            this.rollbackSavepoint.run();
            this.releaseSavepoint.run();
          }
          failed.set(pending, this.fault(err));
        }
      }
      for (const [pool, ip] of cursors) this.upsertCursor.run(pool, ip);
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

  /** Flushes what is queued, then closes for real: statements left open would keep the file locked. */
  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    for (const statement of this.statements) statement.finalize();
    this.db.close(true);
  }
}
