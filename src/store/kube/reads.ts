/**
 * The Kubernetes-API store's reads, all from the watch-fed cache (cache.ts): no read lists
 * the pool on the API server, so an ADD, a DEL, the leak sweep and the admin questions cost
 * the API server nothing. What they see is what the watch has delivered: this daemon's own
 * commits at once, other daemons' a moment later.
 */
import { addressOrderKey, type Family, lastOf, networkOf, parseCidr, parseIp } from "../../ipam/address.ts";
import { type AllocationFilter, type AllocationRecord, type Binding, type Block, type Hold, matchesFilter } from "../records.ts";
import type { BlockCache } from "./cache.ts";
import { allocationOf, bindingOf, holdOf } from "./stored.ts";

/** Address order, as every store lists: by space, then IPv4 before IPv6, then numerically. */
function orderKey(space: string, ip: string): string {
  const parsed = parseIp(ip)!;
  return `${space}\0${Buffer.from(addressOrderKey(parsed.family, parsed.value)).toString("hex")}`;
}

export function allRecords(cache: BlockCache, space?: string): AllocationRecord[] {
  const out: AllocationRecord[] = [];
  for (const { view } of cache.inSpace(space)) for (const [ip, a] of view.allocations) out.push(allocationOf(view.space, ip, a));
  return out;
}

export function holders(cache: BlockCache, ip: string): AllocationRecord[] {
  const out: AllocationRecord[] = [];
  for (const { view } of cache.inSpace()) {
    const a = view.allocations.get(ip);
    if (a) out.push(allocationOf(view.space, ip, a));
  }
  return out;
}

/** The candidates a filter narrows to through an index, or every allocation. */
function candidates(cache: BlockCache, f: AllocationFilter): AllocationRecord[] {
  if (f.containerID !== undefined) return cache.ofContainer(f.containerID);
  if (f.ip !== undefined) return holders(cache, f.ip);
  if (f.podNamespace !== undefined && f.podName !== undefined) return cache.ofPod(f.podNamespace, f.podName);
  if (f.node !== undefined) return cache.ofNode(f.node);
  return allRecords(cache);
}

export function allocations(cache: BlockCache, f: AllocationFilter): AllocationRecord[] {
  const after = f.after ? orderKey(f.after.space, f.after.ip) : "";
  const keyed = candidates(cache, f)
    .filter((r) => matchesFilter(r, f))
    .map((r) => [orderKey(r.space, r.ip), r] as const)
    .filter(([k]) => k > after)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const offset = f.offset ?? 0;
  return keyed.slice(offset, offset + (f.limit ?? 1000)).map(([, r]) => r);
}

export function forEachTaken(cache: BlockCache, visit: (space: string, family: Family, ip: string, held: boolean) => void, space?: string): void {
  for (const { view } of cache.inSpace(space)) {
    const family = (ip: string): Family => (ip.includes(":") ? 6 : 4);
    for (const ip of view.allocations.keys()) visit(view.space, family(ip), ip, false);
    for (const ip of view.holds.keys()) if (!view.allocations.has(ip)) visit(view.space, family(ip), ip, true);
    // Another commit's pending change keeps its address from everyone until its fate is known.
    for (const ip of view.locks.keys()) if (!view.allocations.has(ip) && !view.holds.has(ip)) visit(view.space, family(ip), ip, true);
  }
}

export function holds(cache: BlockCache, space?: string): Hold[] {
  const out: Hold[] = [];
  for (const { view } of cache.inSpace(space)) for (const [ip, h] of view.holds) out.push(holdOf(view.space, ip, h));
  return out.sort((a, b) => (a.until ?? 0) - (b.until ?? 0));
}

export function bindings(cache: BlockCache): Binding[] {
  const out: Binding[] = [];
  for (const { view } of cache.inSpace()) for (const [pod, b] of view.bindings) out.push(bindingOf(view.space, pod, b));
  return out.sort((a, b) => (a.releasedAt ?? 0) - (b.releasedAt ?? 0));
}

export function binding(cache: BlockCache, space: string, pod: string): Binding | undefined {
  const name = cache.bindingBlock(space, pod);
  const stored = name ? cache.block(name)?.view.bindings.get(pod) : undefined;
  return stored ? bindingOf(space, pod, stored) : undefined;
}

export function blocks(cache: BlockCache, space?: string): Block[] {
  const out: Block[] = [];
  for (const { view } of cache.inSpace(space)) if (view.node !== "") out.push({ space: view.space, cidr: view.cidr, node: view.node });
  return out;
}

/** Whether any address from first to last of a space is allocated, held or pending. */
export function anyTaken(cache: BlockCache, space: string, first: string, last: string): boolean {
  const [lo, hi] = [parseIp(first)!, parseIp(last)!];
  for (const { view } of cache.inSpace(space)) {
    const cidr = parseCidr(view.cidr);
    if (!cidr || cidr.family !== lo.family || lastOf(cidr) < lo.value || networkOf(cidr) > hi.value) continue;
    for (const ip of [...view.allocations.keys(), ...view.holds.keys(), ...view.locks.keys()]) {
      const p = parseIp(ip);
      if (p && p.family === lo.family && p.value >= lo.value && p.value <= hi.value) return true;
    }
  }
  return false;
}

export function namespaceUse(cache: BlockCache, pool: string, node?: string): Map<string, number> {
  const use = new Map<string, number>();
  const records = node === undefined ? allRecords(cache) : cache.ofNode(node);
  for (const r of records) if (r.pool === pool && r.podNamespace) use.set(r.podNamespace, (use.get(r.podNamespace) ?? 0) + 1);
  return use;
}
