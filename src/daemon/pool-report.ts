/**
 * What `GET /v1/pools` and `ipamd pools` show: per named pool its definition, size, used,
 * free, utilization, node subnets, addresses resting for reuse, and orphans — addresses still
 * held in a pool's space that its current definition no longer covers (after a reload).
 * Orphans stay taken until released: they are reported, never dropped or handed out twice.
 * Apart from them, the netconfs' inline range sets, each in its network's own space.
 */
import { cidrContains, type Family, formatIp, parseIp } from "../ipam/address.ts";
import type { ExtentSet } from "../ipam/freespace.ts";
import type { RangeSet } from "../ipam/pool.ts";
import type { PoolReport, PoolsResponse, RangeSetReport } from "../protocol-admin.ts";
import type { AllocationRecord, Hold, Store } from "../store/store.ts";
import { type PoolUsage, sourceOf } from "./observability.ts";
import type { NamedPool } from "../ipam/named-pool.ts";
import { spaceOf } from "../engine/pools.ts";
import { tenantFields, type UseScope } from "./pool-tenants.ts";
import type { Engine } from "../engine/engine.ts";

const ORPHAN_SAMPLE = 20;

function usedIn(set: RangeSet, taken: ExtentSet): number {
  let used = 0;
  for (const r of set.ranges) used += taken.countIn(r.start, r.end);
  return used;
}

/** Taken extents that no current pool of the space covers: orphans of a redefinition. */
function orphanExtents(sets: RangeSet[], taken: ExtentSet): [bigint, bigint][] {
  const ranges = sets.flatMap((s) => s.ranges).sort((a, b) => (a.start < b.start ? -1 : 1));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of taken.extents()) {
    let from = lo;
    for (const r of ranges) {
      if (r.end < from) continue;
      if (r.start > hi) break;
      if (r.start > from) out.push([from, r.start - 1n]);
      from = r.end + 1n;
      if (from > hi) break;
    }
    if (from <= hi) out.push([from, hi]);
  }
  return out;
}

function orphansOf(extents: [bigint, bigint][], family: Family): PoolReport["orphans"] {
  const sample: string[] = [];
  let count = 0n;
  for (const [lo, hi] of extents) {
    count += hi - lo + 1n;
    for (let x = lo; x <= hi && sample.length < ORPHAN_SAMPLE; x++) sample.push(formatIp(x, family));
  }
  return { count: Number(count), sample };
}

/**
 * A pool's figures from the addresses taken in it (allocations and holds alike): `used` counts
 * allocations only, holds (cooling, parked for a sticky pod) are reported apart, and free and
 * utilization count both as unavailable.
 */
function figures(set: RangeSet, taken: number, held: number) {
  const free = set.size - BigInt(taken);
  const utilization = set.size === 0n ? 100 : Number((BigInt(taken) * 10_000n) / set.size) / 100;
  return { size: set.size.toString(), used: Math.max(0, taken - held), free: (free < 0n ? 0n : free).toString(), utilization };
}

/** The size and use of the pool (or inline range set) an allocation came from, for the utilization watch. */
export function usageOf(engine: Engine, r: AllocationRecord): PoolUsage | null {
  const named = r.pool === null ? undefined : engine.registry.named.get(r.pool);
  const set = named ? engine.registry.rangeSetOf(named) : engine.registry.inline.get(`${r.network}\0${r.rangeSet}`)?.target.rangeSet;
  if (!set) return null;
  return { name: sourceOf(r), size: Number(set.size), used: usedIn(set, engine.takenSet(r.space, set.family)) };
}

/** Cooling, parked and reserved addresses of a space that `inPool` accepts (named pools share a space). */
function holdCounts(engine: Engine, space: string, inPool: (ip: string) => boolean): Record<Hold["kind"], number> {
  const counts = { cooling: 0, sticky: 0, reserved: 0 };
  for (const h of engine.state.allHolds()) if (h.space === space && inPool(h.ip)) counts[h.kind]++;
  return counts;
}

/** Every named pool's report, and every inline range set's this daemon has allocated from. */
export async function poolReports(engine: Engine, store: Store, use: UseScope = "cluster"): Promise<PoolsResponse> {
  return { pools: await namedPoolReports(engine, store, use), rangeSets: rangeSetReports(engine) };
}

function rangeSetReports(engine: Engine): RangeSetReport[] {
  return [...engine.registry.inline.values()].map(({ network, target }) => {
    const { used, ...rest } = figures(target.rangeSet, usedIn(target.rangeSet, engine.takenSet(target.space, target.rangeSet.family)), 0);
    return { network, rangeSet: target.rangeSet.key, family: target.rangeSet.family, used, ...rest };
  });
}

const countBy = (keys: string[]): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
};

/** Orphans per pool: found per space and told by the pool whose subnet holds them, else by the space's first pool, so each is counted once. */
function orphansByPool(engine: Engine, named: NamedPool[]): Map<string, [bigint, bigint][]> {
  const setOf = (pool: NamedPool) => engine.registry.rangeSetOf(pool);
  const orphans = new Map<string, [bigint, bigint][]>();
  for (const space of new Set(named.map(spaceOf))) {
    const pools = named.filter((p) => spaceOf(p) === space);
    const family = pools[0]!.family;
    const sets = pools.flatMap((p) => setOf(p) ?? []);
    for (const extent of orphanExtents(sets, engine.takenSet(space, family))) {
      const owner = pools.find((p) => setOf(p)?.ranges.some((r) => cidrContains(r.subnet, family, extent[0]))) ?? pools[0]!;
      orphans.set(owner.name, [...(orphans.get(owner.name) ?? []), extent]);
    }
  }
  return orphans;
}

async function namedPoolReports(engine: Engine, store: Store, use: UseScope): Promise<PoolReport[]> {
  const reports: PoolReport[] = [];
  const named = [...engine.registry.named.values()];
  const orphans = orphansByPool(engine, named);
  // Asked on demand, reservations are counted as the store has them (another daemon's too);
  // a scrape counts the ones this daemon's memory knows.
  const reservedByPool = use === "cluster" ? countBy((await engine.reservations()).map((h) => h.pool ?? "")) : null;
  for (const pool of named) {
    const space = spaceOf(pool);
    const set = engine.registry.rangeSetOf(pool);
    const taken = engine.takenSet(space, pool.family);
    const inPool = (ip: string) => {
      const parsed = parseIp(ip);
      return !!set && !!parsed && set.ranges.some((r) => parsed.value >= r.start && parsed.value <= r.end);
    };
    const counts = holdCounts(engine, space, inPool);
    const base = {
      name: pool.name,
      family: pool.family,
      definition: pool.input,
      cooling: counts.cooling,
      stickyParked: counts.sticky,
      reserved: reservedByPool ? (reservedByPool.get(pool.name) ?? 0) : counts.reserved,
      orphans: orphansOf(orphans.get(pool.name) ?? [], pool.family),
      ...(await tenantFields(engine, pool, use)),
    };
    if (!set) {
      reports.push({ ...base, kind: "node-subnet", size: "0", used: 0, free: "0", utilization: 100, nodeSubnets: await store.nodeSubnets(pool.name) });
      continue;
    }
    const used = usedIn(set, taken);
    const nodeSubnet = pool.nodeSubnet ? set.ranges[0]!.subnet : null;
    reports.push({
      ...base,
      kind: pool.nodeSubnet ? "node-subnet" : "named",
      ...figures(set, used, counts.cooling + counts.sticky + counts.reserved),
      ...(nodeSubnet ? { nodeSubnet: `${formatIp(nodeSubnet.address, pool.family)}/${nodeSubnet.prefix}`, nodeSubnets: await store.nodeSubnets(pool.name) } : {}),
    });
  }
  return reports;
}
