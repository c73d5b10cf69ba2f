/**
 * The embedded store's tables, and the migrations a database made by an older ipamd needs.
 * Allocations are keyed by (space, ip); ip_order (see addressOrderKey) lists them in address
 * order a page at a time through its own index. Every index is written on every ADD and DEL,
 * so each one serves a read that needs it and none repeats another's leading columns: the
 * attachment's (container_id, network, ifname) also finds a container's allocations. The
 * history table is history.ts's.
 */
import type { Database } from "bun:sqlite";
import { addressOrderKey, parseIp } from "../../ipam/address.ts";
import { HISTORY_SCHEMA } from "./history.ts";

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS allocations (
  space TEXT NOT NULL,
  network TEXT NOT NULL,
  ip TEXT NOT NULL,
  family INTEGER NOT NULL,
  prefix INTEGER NOT NULL,
  gateway TEXT,
  pool TEXT NOT NULL,
  container_id TEXT NOT NULL,
  ifname TEXT NOT NULL,
  netns TEXT,
  pod_namespace TEXT,
  pod_name TEXT,
  pod_uid TEXT,
  node TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  static INTEGER NOT NULL,
  ip_order BLOB,
  range_set TEXT,
  PRIMARY KEY (space, ip)
) WITHOUT ROWID;
DROP INDEX IF EXISTS allocations_by_attachment;
DROP INDEX IF EXISTS allocations_by_container;
CREATE INDEX IF NOT EXISTS allocations_by_container_attachment ON allocations (container_id, network, ifname);
CREATE INDEX IF NOT EXISTS allocations_by_ip ON allocations (ip);
CREATE TABLE IF NOT EXISTS cursors (pool TEXT PRIMARY KEY, ip TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
  space TEXT NOT NULL, ip TEXT NOT NULL, family INTEGER NOT NULL, kind TEXT NOT NULL, until INTEGER, pod TEXT,
  pool TEXT, note TEXT, reserved_by TEXT,
  PRIMARY KEY (space, ip)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bindings (
  space TEXT NOT NULL, pod TEXT NOT NULL, family INTEGER NOT NULL, ip TEXT NOT NULL, released_at INTEGER,
  PRIMARY KEY (space, pod)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS bindings_by_ip ON bindings (space, ip);
CREATE TABLE IF NOT EXISTS blocks (space TEXT NOT NULL, cidr TEXT NOT NULL, node TEXT NOT NULL, PRIMARY KEY (space, cidr)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (node TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS node_subnets (
  pool TEXT NOT NULL, subnet TEXT NOT NULL, node TEXT NOT NULL,
  PRIMARY KEY (pool, subnet)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS node_subnets_by_node ON node_subnets (pool, node);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
${HISTORY_SCHEMA}`;

/** ip_order of an address's text, as the index orders it. */
export function ipOrder(ip: string): Uint8Array | null {
  const parsed = parseIp(ip);
  return parsed ? addressOrderKey(parsed.family, parsed.value) : null;
}

const columnsOf = (db: Database, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);

/**
 * Brings a database made by an older ipamd up to SCHEMA, in one transaction:
 * 1. ip_order, filled from each address.
 * 2. range_set: an inline range set is no longer named in `pool` (as NETWORK|RANGES), which
 *    now names named pools only ('' when none); cooldowns and parked sticky bindings become
 *    holds (the cooling table goes).
 * 3. holds gain pool, note and reserved_by (reservations); allocations are counted by pool and
 *    namespace through an index of their own (maxPerNamespace).
 */
export function migrate(db: Database): void {
  db.transaction(() => {
    const columns = columnsOf(db, "allocations");
    if (!columns.includes("ip_order")) {
      db.exec("ALTER TABLE allocations ADD COLUMN ip_order BLOB");
      const update = db.prepare("UPDATE allocations SET ip_order = ? WHERE space = ? AND ip = ?");
      for (const row of db.prepare("SELECT space, ip FROM allocations").all() as { space: string; ip: string }[]) update.run(ipOrder(row.ip), row.space, row.ip);
      update.finalize();
    }
    if (!columns.includes("range_set")) {
      db.exec("ALTER TABLE allocations ADD COLUMN range_set TEXT");
      db.exec("UPDATE allocations SET range_set = substr(pool, instr(pool, '|') + 1), pool = '' WHERE space NOT LIKE '@%' AND instr(pool, '|') > 0");
    }
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    if (tables.includes("cooling")) {
      db.exec("INSERT OR IGNORE INTO holds SELECT space, ip, family, 'cooling', until, NULL FROM cooling");
      db.exec("INSERT OR IGNORE INTO holds SELECT space, ip, family, 'sticky', NULL, pod FROM bindings WHERE released_at IS NOT NULL");
      db.exec("DROP TABLE cooling");
    }
    if (!columnsOf(db, "holds").includes("note")) {
      for (const column of ["pool", "note", "reserved_by"]) db.exec(`ALTER TABLE holds ADD COLUMN ${column} TEXT`);
    }
  }).immediate();
  db.exec("CREATE INDEX IF NOT EXISTS allocations_in_order ON allocations (space, ip_order)");
  db.exec("CREATE INDEX IF NOT EXISTS allocations_by_pool_namespace ON allocations (pool, pod_namespace)");
}
