/**
 * From the first etcd layout to this one. The first kept raw text in keys (a/SPACE/IP,
 * att/NETWORK/CID/IFNAME/SPACE/IP, subnets and blocks with their '/' unescaped) and had no
 * secondary keys. Each old key is rewritten with its replacements in one transaction, so a
 * migration cut short leaves every entity either old or new, and the next start finishes it.
 * What it writes follows from what it reads, so two daemons migrating at once agree.
 * Daemons of the first layout must all be stopped first: they would go on writing old keys.
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

export async function migrateFromV1(client: EtcdClient, L: Layout): Promise<void> {
  const rewrites: { remove: string; write: Op[] }[] = [];
  const scan = (what: string) => client.rangePrefix(L.prefix + what);
  const rest = (kv: KeyValue, what: string) => kv.key.slice(L.prefix.length + what.length);

  for (const kv of await scan("a/")) {
    const [, ip] = rest(kv, "a/").split("/");
    if (!rawAddress(ip)) continue;
    const value = JSON.parse(kv.value) as AllocationRecord | HoldMarker;
    if (isHold(value)) {
      // Its details (cooldown's end, sticky pod) come with its cool/ or bind/ key below.
      rewrites.push({ remove: kv.key, write: [{ put: { key: L.allocation(value.space, value.ip), value: holdMarker({ kind: value.held, space: value.space, ip: value.ip }) } }] });
      continue;
    }
    const r = withRangeSet(value);
    const json = JSON.stringify(r);
    const { attachment, references } = L.entries(r);
    rewrites.push({
      remove: kv.key,
      write: [{ put: { key: L.allocation(r.space, r.ip), value: json } }, { put: { key: attachment, value: json } }, ...references.map((key) => ({ put: { key, value: "" } }))],
    });
  }
  // The old attachment index is rebuilt from a/ above; its keys only go.
  for (const kv of await scan("att/")) if (rawAddress(rest(kv, "att/").split("/").pop())) rewrites.push({ remove: kv.key, write: [] });
  for (const kv of await scan("cur/")) {
    const pool = rest(kv, "cur/");
    if (L.cursor(pool) !== kv.key) rewrites.push({ remove: kv.key, write: [{ put: { key: L.cursor(pool), value: kv.value } }] });
  }
  for (const kv of await scan("cool/")) {
    const c = JSON.parse(kv.value) as Cooling;
    const hold: Hold = { space: c.space, family: c.family, ip: c.ip, kind: "cooling", until: c.until, pod: null };
    rewrites.push({ remove: kv.key, write: [{ put: { key: L.hold(c.space, c.ip), value: JSON.stringify(hold) } }] });
  }
  for (const kv of await scan("bind/")) {
    const b = JSON.parse(kv.value) as Binding;
    if (L.binding(b.space, b.pod) === kv.key) continue;
    const write: Op[] = [{ put: { key: L.binding(b.space, b.pod), value: kv.value } }];
    // A parked binding held its address by itself; now a sticky hold does.
    if (b.releasedAt !== null) write.push({ put: { key: L.hold(b.space, b.ip), value: JSON.stringify({ space: b.space, family: b.family, ip: b.ip, kind: "sticky", until: null, pod: b.pod } satisfies Hold) } });
    rewrites.push({ remove: kv.key, write });
  }
  for (const [what, key] of [["subnet/", L.subnet], ["block/", L.block]] as const) {
    for (const kv of await scan(what)) {
      const [owner, ...cidr] = rest(kv, what).split("/");
      if (cidr.length === 2) rewrites.push({ remove: kv.key, write: [{ put: { key: key(owner!, cidr.join("/")), value: kv.value } }] });
    }
  }
  for (const kv of await scan("ev/")) {
    const event = JSON.parse(kv.value) as HistoryEvent & { n?: number };
    if (event.n !== undefined) continue;
    const id = rest(kv, "ev/");
    const { id: _old, ...stored } = event;
    const write: Op[] = [{ put: { key: L.event(id), value: JSON.stringify({ ...stored, n: 0 }) } }, ...L.eventIndexes(event, id).map((key) => ({ put: { key, value: "" } }))];
    rewrites.push({ remove: L.event(id) === kv.key ? "" : kv.key, write });
  }

  // Packed into transactions, each old key going with its replacements.
  let ops: Op[] = [];
  const send = async () => {
    if (ops.length > 0) await client.txn([], ops);
    ops = [];
  };
  for (const { remove, write } of rewrites) {
    const group: Op[] = [...write, ...(remove ? [{ delete: { key: remove } }] : [])];
    if (ops.length + group.length > MAX_OPS) await send();
    ops.push(...group);
  }
  await send();
}
