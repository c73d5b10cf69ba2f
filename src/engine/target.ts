/**
 * Where an ADD takes addresses from: one target per range set it asks for — one of the
 * netconf's inline range sets (in the network's own address space), or a named pool's range
 * set (in its family's shared space). Also how a target's answer is worded.
 */
import { formatIp, parseIp } from "../ipam/address.ts";
import type { PoolPolicy } from "../ipam/named-pool.ts";
import type { RangeSet } from "../ipam/pool.ts";
import { type AllocationRecord, rangeSetCursor } from "../store/store.ts";
import type { Answer } from "./requests.ts";

export interface Target {
  /** The address space: the network's name (inline ranges) or a named pool's (see namedSpace). */
  space: string;
  /** The named pool; null for the netconf's inline ranges. */
  pool: string | null;
  /** The range set's canonical text. */
  rangeSet: RangeSet;
  policy: PoolPolicy;
  /** The most addresses of this pool one namespace may hold; null: no limit. */
  maxPerNamespace: number | null;
}

export const cursorOf = (t: Target): string => rangeSetCursor(t.space, t.rangeSet.key);

/** What an address is reported as: its named pool, or its network's inline range set. */
export const targetName = (t: Target, network: string): string => t.pool ?? `${network} ${t.rangeSet.key}`;

export const toAnswer = (r: AllocationRecord): Answer => ({
  family: r.family,
  address: r.ip,
  prefix: r.prefix,
  ...(r.gateway ? { gateway: r.gateway } : {}),
});

/**
 * An address as the call being answered sees it: prefix and gateway come from the range of
 * this call's netconf (or pool) that holds it, not from whatever was recorded when it was
 * allocated or imported (host-local's files carry no prefix).
 */
export function answerFor(r: AllocationRecord, targets: Target[]): Answer {
  const parsed = parseIp(r.ip);
  for (const t of targets) {
    if (!parsed || t.space !== r.space || t.rangeSet.family !== r.family) continue;
    const range = t.rangeSet.ranges.find((x) => parsed.value >= x.start && parsed.value <= x.end);
    if (range) return { family: r.family, address: r.ip, prefix: range.subnet.prefix, ...(range.gateway === null ? {} : { gateway: formatIp(range.gateway, r.family) }) };
  }
  return toAnswer(r);
}

/** A sticky binding's key: the pool and the pod's namespace/name (one address per pool). */
export const stickyKey = (pool: string | null, namespace: string | null | undefined, name: string | null | undefined): string | null =>
  pool !== null && namespace && name ? `${pool}:${namespace}/${name}` : null;
