/**
 * Planning an import of allocations made elsewhere (a host-local data dir) into a network's
 * address space: each entry the space does not hold yet becomes an allocation, recorded with
 * the range (prefix, gateway, range set) of the network's netconf that holds it, when given.
 * The engine plans one slice at a time, right before committing it, so entries taken by an
 * ADD meanwhile are seen. Pure.
 */
import { formatIp, type Ip } from "../ipam/address.ts";
import type { RangeSet } from "../ipam/pool.ts";
import { type AllocationRecord, rangeSetCursor } from "../store/store.ts";
import { emptyPlan, type Plan } from "./plan.ts";
import type { StateView } from "./state.ts";

export interface ImportItem {
  ip: Ip;
  containerID: string;
  ifname: string;
}

export interface ImportSlice {
  plan: Plan;
  /** Entries of the slice that another attachment took meanwhile. */
  taken: ImportItem[];
}

export function planImportSlice(view: StateView, items: ImportItem[], input: { network: string; sets: RangeSet[]; node: string; now: number }): ImportSlice {
  const plan = emptyPlan();
  const taken: ImportItem[] = [];
  const picked = new Set<bigint>();
  for (const item of items) {
    const { ip } = item;
    if (view.takenSet(input.network, ip.family).has(ip.value) || picked.has(ip.value)) {
      taken.push(item);
      continue;
    }
    picked.add(ip.value);
    const set = input.sets.find((s) => s.family === ip.family && s.ranges.some((r) => ip.value >= r.start && ip.value <= r.end));
    const range = set?.ranges.find((r) => ip.value >= r.start && ip.value <= r.end);
    const record: AllocationRecord = {
      space: input.network,
      network: input.network,
      ip: formatIp(ip.value, ip.family),
      family: ip.family,
      prefix: range ? range.subnet.prefix : ip.family === 4 ? 32 : 128,
      gateway: range?.gateway == null ? null : formatIp(range.gateway, ip.family),
      pool: null,
      rangeSet: set ? set.key : "imported",
      containerID: item.containerID,
      ifname: item.ifname,
      netns: null,
      podNamespace: null,
      podName: null,
      podUid: null,
      node: input.node,
      createdAt: input.now,
      static: false,
    };
    plan.takes.push({ space: input.network, family: ip.family, value: ip.value });
    plan.changes.push({ op: "allocate", record, kind: "imported", cause: "import host-local" });
    plan.allocated.push(record);
  }
  return { plan, taken };
}

/** host-local's last_reserved_ip.N: where allocation continues in range set N. */
export function planImportCursors(network: string, sets: RangeSet[], cursors: { rangeSet: number; ip: Ip }[]): Plan {
  const plan = emptyPlan();
  for (const { rangeSet, ip } of cursors) {
    const set = sets[rangeSet];
    if (!set) continue;
    const key = rangeSetCursor(network, set.key);
    plan.changes.push({ op: "cursor", rangeSet: key, ip: formatIp(ip.value, ip.family) });
    plan.cursors.push([key, ip.value]);
  }
  return plan;
}
