/**
 * The embedded store: bun:sqlite in WAL mode with synchronous=FULL, one daemon per database
 * (an exclusive lock). Its pieces: the tables and migrations (sqlite/schema.ts), each change
 * as SQL (sqlite/changes.ts), the group commit (sqlite/group-commit.ts) and the admin reads
 * (sqlite/admin-queries.ts). Not shared: this daemon's memory is the truth between commits.
 */
import type { Database, Statement } from "bun:sqlite";
import { ErrorCode, IpamError } from "../errors.ts";
import type { Family } from "../ipam/address.ts";
import { allocationsQuery, type Row, toRecord } from "./sqlite/admin-queries.ts";
import { SqliteChanges } from "./sqlite/changes.ts";
import { SqliteGroupCommit } from "./sqlite/group-commit.ts";
import { historyQuery, pruneHistory } from "./sqlite/history.ts";
import { ipOrder, migrate, SCHEMA } from "./sqlite/schema.ts";
import { fileFault, sqliteFault } from "./storage-fault.ts";
import { type AllocationFilter, type AllocationRecord, type AttachmentKey, type Binding, type Block, byAddress, type Change, type HistoryEvent, type HistoryFilter, type Hold, type Store, type SubnetChooser } from "./store.ts";

const familyOf = (ip: string): Family => (ip.includes(":") ? 6 : 4);

const OPTIONAL_HOLD_FIELDS = new Set(["pool", "note", "by"]);

export class SqliteStore implements Store {
  readonly shared = false;
  readonly commitCapacity = Number.POSITIVE_INFINITY;
  private readonly statements: Statement[] = [];
  private readonly group: SqliteGroupCommit;
  private readonly selectAttachment: Statement;
  private readonly selectAttachments: Statement;
  private readonly selectHolders: Statement;
  private keepAlive: Timer | undefined;

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
    this.group = new SqliteGroupCommit(db, new SqliteChanges(prepare), (err) => this.fault(err), prepare);
    this.selectAttachment = prepare("SELECT * FROM allocations WHERE network = ? AND container_id = ? AND ifname = ?");
    this.selectAttachments = prepare("SELECT DISTINCT container_id, ifname FROM allocations WHERE network = ?");
    this.selectHolders = prepare("SELECT * FROM allocations WHERE ip = ?");
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

  get onCommit(): ((seconds: number, callers: number) => void) | undefined {
    return this.group.onCommit;
  }

  set onCommit(listener: ((seconds: number, callers: number) => void) | undefined) {
    this.group.onCommit = listener;
  }

  /** An SQLite error as the StorageFault it stands for, or as it is. */
  private fault(err: unknown): unknown {
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

  commit(changes: Change[]): Promise<void> {
    return this.group.commit(changes);
  }

  async probe(): Promise<void> {
    this.read(() => this.db.transaction(() => this.once("INSERT OR REPLACE INTO health VALUES (1, ?)", (s) => s.run(Date.now()))).immediate());
  }

  async forEachTaken(visit: (space: string, family: Family, ip: string, held: boolean) => void, space?: string): Promise<void> {
    // Row by row: materialising a million rows first costs twice the time and memory. Only
    // space and ip, so the scan reads the small covering index allocations_by_ip, not every
    // row's columns; the family is the address's own (only IPv6 is written with ':').
    const where = space === undefined ? "" : " WHERE space = ?";
    const params = space === undefined ? [] : [space];
    for (const [table, held] of [["allocations", false], ["holds", true]] as const) {
      this.once(`SELECT space, ip FROM ${table}${where}`, (s) => {
        for (const row of s.iterate(...params) as IterableIterator<{ space: string; ip: string }>) visit(row.space, familyOf(row.ip), row.ip, held);
      });
    }
  }

  async cursors(): Promise<Map<string, string>> {
    return this.once("SELECT pool, ip FROM cursors", (s) => new Map(s.values() as [string, string][]));
  }

  async holds(space?: string): Promise<Hold[]> {
    const where = space === undefined ? "" : "WHERE space = ?";
    const rows = this.once(`SELECT space, family, ip, kind, until, pod, pool, note, reserved_by AS "by" FROM holds ${where} ORDER BY coalesce(until, 0)`, (s) => s.all(...(space === undefined ? [] : [space])) as Record<string, unknown>[]);
    // A reservation's columns are null on other holds: left out, as the schema has them.
    return rows.map((row) => Object.fromEntries(Object.entries(row).filter(([k, v]) => v !== null || !OPTIONAL_HOLD_FIELDS.has(k))) as Hold);
  }

  async bindings(): Promise<Binding[]> {
    return this.once("SELECT space, pod, family, ip, released_at AS releasedAt FROM bindings ORDER BY released_at", (s) => s.all() as Binding[]);
  }

  async binding(space: string, pod: string): Promise<Binding | undefined> {
    return this.once("SELECT space, pod, family, ip, released_at AS releasedAt FROM bindings WHERE space = ? AND pod = ?", (s) => (s.get(space, pod) as Binding | null) ?? undefined);
  }

  async blocks(space?: string): Promise<Block[]> {
    const where = space === undefined ? "" : "WHERE space = ?";
    return this.once(`SELECT space, cidr, node FROM blocks ${where}`, (s) => s.all(...(space === undefined ? [] : [space])) as Block[]);
  }

  /** A lease of our own: the node's row carries when it runs out, renewed every ttl/3. */
  async announce(node: string, ttlSeconds: number): Promise<void> {
    const renew = () => this.once("INSERT OR REPLACE INTO nodes VALUES (?, ?)", (s) => s.run(node, Date.now() + ttlSeconds * 1000));
    renew();
    clearInterval(this.keepAlive);
    this.keepAlive = setInterval(() => {
      try {
        renew();
      } catch {
        // a storage fault: STATUS reports it; the lease runs out if it lasts
      }
    }, (ttlSeconds * 1000) / 3);
  }

  async liveNodes(): Promise<string[]> {
    return this.once("SELECT node FROM nodes WHERE expires > ?", (s) => (s.values(Date.now()) as [string][]).map(([node]) => node));
  }

  async anyTaken(space: string, first: string, last: string): Promise<boolean> {
    const [lo, hi] = [ipOrder(first), ipOrder(last)];
    const allocated = this.once("SELECT 1 FROM allocations WHERE space = ? AND ip_order BETWEEN ? AND ? LIMIT 1", (s) => s.get(space, lo, hi) !== null);
    if (allocated) return true;
    // Holds are few: judged here rather than given an index of their own.
    const order = (ip: string) => Buffer.from(ipOrder(ip) ?? []).toString("hex");
    const [from, to] = [order(first), order(last)];
    return (await this.holds(space)).some((h) => order(h.ip) >= from && order(h.ip) <= to && order(h.ip).length === from.length);
  }

  async attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    const rows = this.read(() => this.selectAttachment.all(network, key.containerID, key.ifname) as Row[]);
    // Ordered here, not by SQL: an ORDER BY would build a temporary b-tree for a row or two.
    const records = rows.map(toRecord);
    if (records.length > 1) records.sort(byAddress);
    return records;
  }

  async attachments(network: string, node?: string): Promise<AttachmentKey[]> {
    const rows =
      node === undefined
        ? this.read(() => this.selectAttachments.values(network) as [string, string][])
        : this.once("SELECT DISTINCT container_id, ifname FROM allocations WHERE network = ? AND node = ?", (s) => s.values(network, node) as [string, string][]);
    return rows.map(([containerID, ifname]) => ({ containerID, ifname }));
  }

  async holders(ip: string): Promise<AllocationRecord[]> {
    return this.read(() => this.selectHolders.all(ip) as Row[]).map(toRecord);
  }

  async allocations(filter: AllocationFilter): Promise<AllocationRecord[]> {
    const { sql, params } = allocationsQuery(filter);
    return this.once(sql, (s) => (s.all(...params) as Row[]).map(toRecord));
  }

  async namespaceUse(pool: string, node?: string): Promise<Map<string, number>> {
    const where = `pool = ? AND pod_namespace IS NOT NULL${node === undefined ? "" : " AND node = ?"}`;
    const params = node === undefined ? [pool] : [pool, node];
    return this.once(`SELECT pod_namespace, count(*) FROM allocations WHERE ${where} GROUP BY pod_namespace`, (s) => new Map(s.values(...params) as [string, number][]));
  }

  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    const { sql, params } = historyQuery(filter);
    return this.once(sql, (s) => s.all(...params) as HistoryEvent[]);
  }

  async pruneHistory(before: number): Promise<number> {
    try {
      return await pruneHistory(this.db, before, { open: () => !this.group.closed });
    } catch (err) {
      throw this.fault(err);
    }
  }

  async netnsAllocations(node: string): Promise<AllocationRecord[]> {
    return this.once("SELECT * FROM allocations WHERE node = ? AND netns IS NOT NULL AND netns != ''", (s) => (s.all(node) as Row[]).map(toRecord));
  }

  async claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    // bun:sqlite is synchronous, so this transaction cannot interleave with a group commit.
    return this.read(() =>
      this.db
        .transaction(() => {
          const claims = this.once("SELECT subnet, node FROM node_subnets WHERE pool = ?", (s) => s.all(pool) as { subnet: string; node: string }[]);
          const mine = claims.find((c) => c.node === node)?.subnet ?? null;
          const chosen = choose(claims.filter((c) => c.node !== node).map((c) => c.subnet), mine);
          if (chosen === mine) return mine;
          this.once("DELETE FROM node_subnets WHERE pool = ? AND node = ?", (s) => s.run(pool, node));
          if (chosen !== null) this.once("INSERT INTO node_subnets VALUES (?, ?, ?)", (s) => s.run(pool, chosen, node));
          return chosen;
        })
        .immediate(),
    );
  }

  async nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    return this.once("SELECT node, subnet FROM node_subnets WHERE pool = ? ORDER BY subnet", (s) => s.all(pool) as { node: string; subnet: string }[]);
  }

  /** Flushes what is queued, then closes for real: statements left open would keep the file locked. */
  async close(): Promise<void> {
    clearInterval(this.keepAlive);
    this.group.flush();
    this.group.closed = true;
    for (const statement of this.statements) statement.finalize();
    this.db.close(true);
  }
}
