/**
 * What `GET /v1/pools` and `ipamd pools` show: per pool its definition, size, used, free,
 * utilization, node subnets, addresses resting for reuse, and orphans — addresses still held
 * in a pool's space that its current definition no longer covers (after a reload). Orphans
 * stay taken until released: they are reported, never dropped or handed out twice.
 */
import { formatIp } from "../ipam/address.ts";
import type { ExtentSet } from "../ipam/freespace.ts";
import type { RangeSet } from "../ipam/pool.ts";
import type { PoolReport } from "../protocol-admin.ts";
import type { Store } from "../store/store.ts";
import { spaceOfPool } from "./pool-registry.ts";
import type { IpamService } from "./ipam-service.ts";

const ORPHAN_SAMPLE = 20;

function usage(set: RangeSet, taken: ExtentSet): { used: number; orphans: PoolReport["orphans"] } {
  let used = 0;
  for (const r of set.ranges) used += taken.countIn(r.start, r.end);
  const ranges = [...set.ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
  const sample: string[] = [];
  let count = 0n;
  const outside = (lo: bigint, hi: bigint) => {
    count += hi - lo + 1n;
    for (let x = lo; x <= hi && sample.length < ORPHAN_SAMPLE; x++) sample.push(formatIp(x, set.family));
  };
  for (const [lo, hi] of taken.extents()) {
    let from = lo;
    for (const r of ranges) {
      if (r.end < from) continue;
      if (r.start > hi) break;
      if (r.start > from) outside(from, r.start - 1n);
      from = r.end + 1n;
      if (from > hi) break;
    }
    if (from <= hi) outside(from, hi);
  }
  return { used, orphans: { count: Number(count), sample } };
}

function figures(set: RangeSet, used: number) {
  const free = set.size - BigInt(used);
  const utilization = set.size === 0n ? 100 : Number((BigInt(used) * 10_000n) / set.size) / 100;
  return { size: set.size.toString(), used, free: (free < 0n ? 0n : free).toString(), utilization };
}

export async function poolReports(ipam: IpamService, store: Store): Promise<PoolReport[]> {
  const reports: PoolReport[] = [];
  for (const pool of ipam.registry.named.values()) {
    const space = spaceOfPool(pool.name);
    const set = pool.rangeSet ?? ipam.registry.nodeSetOf(pool.name);
    const taken = ipam.takenSet(space, pool.family);
    const counts = ipam.reuse.counts(space);
    const base = { name: pool.name, family: pool.family, definition: pool.input, cooling: counts.cooling, stickyParked: counts.parked };
    if (!set) {
      reports.push({ ...base, kind: "node-subnet", size: "0", used: 0, free: "0", utilization: 100, nodeSubnets: await store.nodeSubnets(pool.name), orphans: { count: taken.size, sample: [] } });
      continue;
    }
    const { used, orphans } = usage(set, taken);
    const nodeSubnet = pool.nodeSubnet ? set.ranges[0]!.subnet : null;
    reports.push({
      ...base,
      kind: pool.nodeSubnet ? "node-subnet" : "named",
      ...figures(set, used),
      ...(nodeSubnet ? { nodeSubnet: `${formatIp(nodeSubnet.address, pool.family)}/${nodeSubnet.prefix}`, nodeSubnets: await store.nodeSubnets(pool.name) } : {}),
      orphans,
    });
  }
  for (const target of ipam.registry.inline.values()) {
    const taken = ipam.takenSet(target.space, target.set.family);
    let used = 0;
    for (const r of target.set.ranges) used += taken.countIn(r.start, r.end);
    reports.push({
      name: target.pool,
      kind: "inline",
      family: target.set.family,
      definition: target.set.key,
      ...figures(target.set, used),
      cooling: 0,
      stickyParked: 0,
      orphans: { count: 0, sample: [] },
    });
  }
  return reports;
}
