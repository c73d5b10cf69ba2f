/**
 * From older etcd layouts to this one (5), each in its steps: from 1 (migrateFromV1), from 2
 * or 3 (migrateFromV2orV3), and from every one of them the last step into 5 (registerSpaces).
 * The first layout kept raw text in keys (a/SPACE/IP, att/NETWORK/CID/IFNAME/SPACE/IP, subnets
 * and blocks with their '/' unescaped) and had no secondary keys. Each old key is rewritten
 * with its replacements in one transaction, so a migration cut short leaves every entity
 * either old or new, and the next start finishes it. What it writes follows from what it
 * reads, so two daemons migrating at once agree. Daemons of an older layout must all be
 * stopped first: they would go on writing its keys.
 */
import type { EtcdClient, KeyValue, Op } from "../etcd-client.ts";
import type { AllocationRecord, Binding, HistoryEvent, Hold } from "../store.ts";
import { MAX_OPS } from "./commit.ts";
import type { Layout } from "./layout.ts";
import { type HoldMarker, holdMarker, isHold } from "./values.ts";

/** The first layout's cooldown value (now a hold of kind cooling). */
interface Cooling {
  space: string;
  family: 4 | 6;
  ip: string;
  until: number;
}

/** The first layout's record named an inline range set in `pool` (NETWORK|RANGES); now rangeSet does. */
function withRangeSet(value: AllocationRecord): AllocationRecord {
  if ("rangeSet" in value) return value;
  const r = value as Omit<AllocationRecord, "rangeSet">;
  const pool = r.pool as string;
  const inline = !r.space.startsWith("@") && pool.includes("|");
  return { ...r, pool: inline ? null : pool, rangeSet: inline ? pool.slice(pool.indexOf("|") + 1) : null };
}

/** A raw address as the first layout wrote it (v2 writes hex, which has neither '.' nor ':'). */
const rawAddress = (text: string | undefined) => text !== undefined && /[.:]/.test(text);

/** One old key and what replaces it ("" remove: the key is kept, rewritten in place). */
interface Rewrite {
  remove: string;
  write: Op[];
}

/** A key of one kind of the first layout: its whole key, and the part after its kind's prefix. */
type Scanned = { kv: KeyValue; rest: string }[];

/** Allocations and hold markers at a/, with the secondary keys the first layout lacked. */
function addressRewrites(L: Layout, scanned: Scanned): Rewrite[] {
  const rewrites: Rewrite[] = [];
  for (const { kv, rest } of scanned) {
    if (!rawAddress(rest.split("/")[1])) continue;
    const value = JSON.parse(kv.value) as AllocationRecord | HoldMarker;
    if (isHold(value)) {
      // Its details (cooldown's end, sticky pod) come with its cool/ or bind/ key.
      rewrites.push({ remove: kv.key, write: [{ put: { key: L.allocation(value.space, value.ip), value: holdMarker({ kind: value.held, space: value.space, ip: value.ip }) } }] });
      continue;
    }
    const r = withRangeSet(value);
    const json = JSON.stringify(r);
    const { attachment, references } = L.entries(r);
    rewrites.push({ remove: kv.key, write: [{ put: { key: L.allocation(r.space, r.ip), value: json } }, { put: { key: attachment, value: json } }, ...references.map((key) => ({ put: { key, value: "" } }))] });
  }
  return rewrites;
}

/** Cooldowns and parked bindings become holds; bindings, cursors, subnets and blocks get escaped keys. */
function holdRewrites(L: Layout, cool: Scanned, bind: Scanned, cur: Scanned): Rewrite[] {
  const rewrites: Rewrite[] = [];
  for (const { kv } of cool) {
    const c = JSON.parse(kv.value) as Cooling;
    const hold: Hold = { space: c.space, family: c.family, ip: c.ip, kind: "cooling", until: c.until, pod: null };
    rewrites.push({ remove: kv.key, write: [{ put: { key: L.hold(c.space, c.ip), value: JSON.stringify(hold) } }] });
  }
  for (const { kv } of bind) {
    const b = JSON.parse(kv.value) as Binding;
    if (L.binding(b.space, b.pod) === kv.key) continue;
    const write: Op[] = [{ put: { key: L.binding(b.space, b.pod), value: kv.value } }];
    // A parked binding held its address by itself; now a sticky hold does.
    if (b.releasedAt !== null) write.push({ put: { key: L.hold(b.space, b.ip), value: JSON.stringify({ space: b.space, family: b.family, ip: b.ip, kind: "sticky", until: null, pod: b.pod } satisfies Hold) } });
    rewrites.push({ remove: kv.key, write });
  }
  for (const { kv, rest } of cur) if (L.cursor(rest) !== kv.key) rewrites.push({ remove: kv.key, write: [{ put: { key: L.cursor(rest), value: kv.value } }] });
  return rewrites;
}

/** History events, with the index keys the first layout lacked. */
function eventRewrites(L: Layout, scanned: Scanned): Rewrite[] {
  return scanned.flatMap(({ kv, rest: id }) => {
    const event = JSON.parse(kv.value) as HistoryEvent & { n?: number };
    if (event.n !== undefined) return [];
    const { id: _old, ...stored } = event;
    const write: Op[] = [{ put: { key: L.event(id), value: JSON.stringify({ ...stored, n: 0 }) } }, ...L.eventIndexes(event, id).map((key) => ({ put: { key, value: "" } }))];
    return [{ remove: L.event(id) === kv.key ? "" : kv.key, write }];
  });
}

export async function migrateFromV1(client: EtcdClient, L: Layout): Promise<void> {
  const scan = async (what: string): Promise<Scanned> => (await client.rangePrefix(L.prefix + what)).map((kv) => ({ kv, rest: kv.key.slice(L.prefix.length + what.length) }));
  const rewrites = [...addressRewrites(L, await scan("a/")), ...holdRewrites(L, await scan("cool/"), await scan("bind/"), await scan("cur/")), ...eventRewrites(L, await scan("ev/"))];
  // The old attachment index is rebuilt from a/; its keys only go.
  for (const { kv, rest } of await scan("att/")) if (rawAddress(rest.split("/").pop())) rewrites.push({ remove: kv.key, write: [] });
  for (const [what, key] of [["subnet/", L.subnet], ["block/", L.block]] as const) {
    for (const { kv, rest } of await scan(what)) {
      const [owner, ...cidr] = rest.split("/");
      if (cidr.length === 2) rewrites.push({ remove: kv.key, write: [{ put: { key: key(owner!, cidr.join("/")), value: kv.value } }] });
    }
  }
  // Packed into transactions, each old key going with its replacements.
  let ops: Op[] = [];
  for (const { remove, write } of rewrites) {
    const group: Op[] = [...write, ...(remove ? [{ delete: { key: remove } }] : [])];
    if (ops.length + group.length > MAX_OPS) {
      await client.txn([], ops);
      ops = [];
    }
    ops.push(...group);
  }
  if (ops.length > 0) await client.txn([], ops);
}

/**
 * From layout 2 or 3, the secondary keys later layouts added: from 2, an allocation from a
 * named pool gains its nsp/ key (maxPerNamespace counts them); from 2 and 3, one with a pod
 * namespace but no pod name gains its pod/ key (layout 4 lists it under its namespace).
 */
export async function migrateFromV2orV3(client: EtcdClient, L: Layout, from: "2" | "3"): Promise<void> {
  const added = (r: AllocationRecord): (string | null)[] => [from === "2" ? L.namespaceEntry(r) : null, r.podNamespace && !r.podName ? L.podEntry(r) : null];
  let ops: Op[] = [];
  for (const kv of await client.rangePrefix(L.allocations())) {
    const value = JSON.parse(kv.value) as AllocationRecord | HoldMarker;
    if (isHold(value)) continue;
    for (const key of added(value)) {
      if (key === null) continue;
      if (ops.length >= MAX_OPS) {
        await client.txn([], ops);
        ops = [];
      }
      ops.push({ put: { key, value: "" } });
    }
  }
  if (ops.length > 0) await client.txn([], ops);
}

/**
 * Into layout 5, from any older one (after its own steps): who holds an address is now read
 * from the address's a/ key in every space, so each space with a key at a/ gets its sp/ key,
 * and the ip/ keys layouts 2 to 4 wrote per allocation go. Puts first, so a migration cut
 * short leaves every address findable, and the next start does it again.
 */
export async function registerSpaces(client: EtcdClient, L: Layout): Promise<void> {
  const base = L.allocations();
  const spaces = new Set<string>();
  for (const kv of await client.rangePrefix(base, { keysOnly: true })) spaces.add(L.partsOf(kv.key, base)[0]!);
  const puts: Op[] = [...spaces].map((space) => ({ put: { key: L.space(space), value: "" } }));
  for (let i = 0; i < puts.length; i += MAX_OPS) await client.txn([], puts.slice(i, i + MAX_OPS));
  await client.deletePrefix(L.formerHolders());
}
