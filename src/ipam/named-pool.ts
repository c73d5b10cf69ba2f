/**
 * Named pools from the daemon's config, following the Cluster API in-cluster IPAM rules:
 * `addresses` mixes CIDRs, `a-b` ranges and single addresses of one family; `prefix` is the
 * prefix length reported in results; `gateway` is never handed out; `excludedAddresses` (same
 * three forms) are taken out; the subnet's network and (IPv4) broadcast addresses are
 * reserved unless `allocateReservedIPAddresses`. A pool may instead be a `supernet` from which
 * each node claims a subnet of `nodeSubnetPrefix` bits (see node-subnet.ts).
 * Everything compiles to the same RangeSet the allocator already serves.
 */
import {
  array,
  boolean,
  check,
  type InferOutput,
  integer,
  maxLength,
  maxValue,
  minValue,
  number,
  optional,
  picklist,
  pipe,
  string,
  strictObject,
} from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { bitsOf, type Cidr, type Family, formatIp, hostMask, lastOf, networkOf, parseCidr, parseIp } from "./address.ts";
import type { Range, RangeSet } from "./pool.ts";
import { compileScope, type PoolScope, ScopeEntries } from "./pool-scope.ts";

export const NamedPoolSchema = pipe(
  strictObject({
    addresses: optional(pipe(array(string()), maxLength(4096))),
    supernet: optional(string()),
    nodeSubnetPrefix: optional(pipe(number(), integer(), minValue(1), maxValue(128))),
    prefix: optional(pipe(number(), integer(), minValue(0), maxValue(128))),
    gateway: optional(string()),
    excludedAddresses: optional(pipe(array(string()), maxLength(4096))),
    allocateReservedIPAddresses: optional(boolean()),
    /** Seconds a released address rests before it is handed out again. */
    releaseCooldown: optional(pipe(number(), minValue(0), maxValue(31 * 24 * 3600))),
    /** `pod`: an address stays bound to the pod's namespace/name across re-creation. */
    sticky: optional(picklist(["pod"])),
    /** Seconds a released sticky binding is kept before the address returns to the pool. */
    stickyTTL: optional(pipe(number(), minValue(1))),
    ...ScopeEntries,
  }),
  check((p) => (p.addresses === undefined) !== (p.supernet === undefined), "a pool needs either addresses or supernet (not both)"),
  check((p) => (p.supernet === undefined) === (p.nodeSubnetPrefix === undefined), "supernet and nodeSubnetPrefix go together"),
);
export type NamedPoolInput = InferOutput<typeof NamedPoolSchema>;

export interface PoolPolicy {
  releaseCooldownMs: number;
  sticky: boolean;
  /** null: a released sticky binding is kept until an operator releases it. */
  stickyTtlMs: number | null;
}

export interface NodeSubnetSpec {
  supernet: Cidr;
  prefix: number;
  /** The gateway's host part, added to each node's subnet (the `0.0.0.1` shorthand). */
  gatewayHost: bigint | null;
  excluded: [bigint, bigint][];
  allocateReserved: boolean;
}

export interface NamedPool {
  name: string;
  family: Family;
  policy: PoolPolicy;
  /** Fixed pools: the allocatable extents. Supernet pools get theirs once the node's subnet is known. */
  rangeSet: RangeSet | null;
  nodeSubnet: NodeSubnetSpec | null;
  /** Whom it serves, and in which address space. */
  scope: PoolScope;
  /** The definition as configured, for reports. */
  input: NamedPoolInput;
}

const invalid = (pool: string, msg: string) => new IpamError(ErrorCode.InvalidNetworkConfig, `pool ${pool}: ${msg}`);

/** Parses "10.0.0.0/24", "10.0.0.10-10.0.0.20" or "10.0.0.7" into an inclusive span. */
export function parseSpan(text: string): { family: Family; lo: bigint; hi: bigint } | null {
  if (text.includes("/")) {
    const cidr = parseCidr(text);
    return cidr ? { family: cidr.family, lo: networkOf(cidr), hi: lastOf(cidr) } : null;
  }
  const dash = text.indexOf("-");
  if (dash > 0) {
    const lo = parseIp(text.slice(0, dash).trim());
    const hi = parseIp(text.slice(dash + 1).trim());
    if (!lo || !hi || lo.family !== hi.family || lo.value > hi.value) return null;
    return { family: lo.family, lo: lo.value, hi: hi.value };
  }
  const ip = parseIp(text);
  return ip ? { family: ip.family, lo: ip.value, hi: ip.value } : null;
}

/** Sorted, merged extents. */
function normalise(spans: [bigint, bigint][]): [bigint, bigint][] {
  const sorted = [...spans].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

/** a minus b, both normalised. */
function subtract(a: [bigint, bigint][], b: [bigint, bigint][]): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const [lo0, hi] of a) {
    let lo = lo0;
    for (const [blo, bhi] of b) {
      if (bhi < lo || blo > hi) continue;
      if (blo > lo) out.push([lo, blo - 1n]);
      lo = bhi + 1n;
      if (lo > hi) break;
    }
    if (lo <= hi) out.push([lo, hi]);
  }
  return out;
}

const sizeOf = (extents: [bigint, bigint][]) => extents.reduce((n, [lo, hi]) => n + hi - lo + 1n, 0n);

/** Builds the allocatable range set of a subnet-shaped pool. */
export function buildRangeSet(key: string, family: Family, subnet: Cidr, gateway: bigint | null, allowed: [bigint, bigint][]): RangeSet {
  const ranges: Range[] = allowed.map(([start, end]) => ({ family, subnet, start, end, gateway }));
  return { family, ranges, key, size: sizeOf(allowed) };
}

function reservedOf(family: Family, subnet: Cidr, gateway: bigint | null, allocateReserved: boolean): [bigint, bigint][] {
  const reserved: [bigint, bigint][] = gateway === null ? [] : [[gateway, gateway]];
  if (!allocateReserved) {
    reserved.push([networkOf(subnet), networkOf(subnet)]);
    if (family === 4) reserved.push([lastOf(subnet), lastOf(subnet)]);
  }
  return normalise(reserved);
}

function spansOf(pool: string, family: Family | null, texts: string[], what: string): { family: Family | null; spans: [bigint, bigint][] } {
  const spans: [bigint, bigint][] = [];
  for (const text of texts) {
    const span = parseSpan(text);
    if (!span) throw invalid(pool, `${what} "${text}" is not a CIDR, a range a-b or an address`);
    if (family !== null && span.family !== family) throw invalid(pool, `${what} "${text}" mixes IPv4 and IPv6 in one pool`);
    family = span.family;
    spans.push([span.lo, span.hi]);
  }
  return { family, spans: normalise(spans) };
}

export function compileNamedPool(name: string, input: NamedPoolInput): NamedPool {
  const policy: PoolPolicy = {
    releaseCooldownMs: Math.round((input.releaseCooldown ?? 0) * 1000),
    sticky: input.sticky === "pod",
    stickyTtlMs: input.stickyTTL === undefined ? null : Math.round(input.stickyTTL * 1000),
  };
  if (input.supernet !== undefined) return compileSupernet(name, input, policy);
  const { family, spans } = spansOf(name, null, input.addresses!, "address");
  if (family === null) throw invalid(name, "addresses is empty");
  const bits = bitsOf(family);
  const prefix = input.prefix ?? bits;
  if (prefix > bits) throw invalid(name, `prefix /${prefix} is too long for IPv${family}`);
  let gateway: bigint | null = null;
  if (input.gateway !== undefined) {
    const gw = parseIp(input.gateway);
    if (!gw) throw invalid(name, `gateway "${input.gateway}" is not an address`);
    if (gw.family !== family) throw invalid(name, `gateway ${input.gateway} is not of the pool's address family`);
    gateway = gw.value;
  }
  // The subnet is the one the gateway (or else the first address) lies in; every address must
  // be inside it, which is also how a gateway outside the pool is caught.
  const anchor = gateway ?? spans[0]![0];
  const subnet: Cidr = { family, address: anchor & ~hostMask(family, prefix), prefix };
  for (const [lo, hi] of spans) {
    if (lo < networkOf(subnet) || hi > lastOf(subnet)) {
      throw invalid(name, `addresses ${formatIp(lo, family)}-${formatIp(hi, family)} lie outside ${formatIp(subnet.address, family)}/${prefix}`);
    }
  }
  const excluded = spansOf(name, family, input.excludedAddresses ?? [], "excluded address").spans;
  const allowed = subtract(subtract(spans, excluded), reservedOf(family, subnet, gateway, input.allocateReservedIPAddresses ?? false));
  if (allowed.length === 0) throw invalid(name, "no address is left after exclusions and reserved addresses");
  return { name, family, policy, rangeSet: buildRangeSet(`pool:${name}`, family, subnet, gateway, allowed), nodeSubnet: null, scope: compileScope(input), input };
}

function compileSupernet(name: string, input: NamedPoolInput, policy: PoolPolicy): NamedPool {
  const supernet = parseCidr(input.supernet!);
  if (!supernet) throw invalid(name, `supernet "${input.supernet}" is not a CIDR`);
  const { family } = supernet;
  const prefix = input.nodeSubnetPrefix!;
  if (networkOf(supernet) !== supernet.address) throw invalid(name, `supernet ${input.supernet} has host bits set`);
  if (prefix < supernet.prefix) throw invalid(name, `nodeSubnetPrefix /${prefix} is shorter than the supernet's /${supernet.prefix}`);
  if (prefix > bitsOf(family) - 2) throw invalid(name, `nodeSubnetPrefix /${prefix} leaves no room for hosts`);
  if (input.prefix !== undefined && input.prefix !== prefix) throw invalid(name, "prefix of a supernet pool is its nodeSubnetPrefix");
  let gatewayHost: bigint | null = 1n;
  if (input.gateway !== undefined) {
    const gw = parseIp(input.gateway);
    if (!gw || gw.family !== family) throw invalid(name, `gateway "${input.gateway}" is not an IPv${family} address`);
    // Either the shorthand host part (0.0.0.1) or an address whose host part is taken.
    gatewayHost = gw.value & hostMask(family, prefix);
  }
  const excluded = spansOf(name, family, input.excludedAddresses ?? [], "excluded address").spans;
  return {
    name,
    family,
    policy,
    rangeSet: null,
    nodeSubnet: { supernet: { family, address: networkOf(supernet), prefix: supernet.prefix }, prefix, gatewayHost, excluded, allocateReserved: input.allocateReservedIPAddresses ?? false },
    scope: compileScope(input),
    input,
  };
}

/** The range set of one node's subnet of a supernet pool. */
export function nodeRangeSet(pool: NamedPool, subnetAddress: bigint): RangeSet {
  const spec = pool.nodeSubnet!;
  const subnet: Cidr = { family: pool.family, address: subnetAddress, prefix: spec.prefix };
  const gateway = spec.gatewayHost === null ? null : subnetAddress | spec.gatewayHost;
  const whole: [bigint, bigint][] = [[networkOf(subnet), lastOf(subnet)]];
  const allowed = subtract(subtract(whole, spec.excluded), reservedOf(pool.family, subnet, gateway, spec.allocateReserved));
  return buildRangeSet(`pool:${pool.name}`, pool.family, subnet, gateway, allowed);
}

/** The extents a pool may ever hand out, for overlap checks between pools. */
export function footprint(pool: NamedPool): [bigint, bigint][] {
  if (pool.nodeSubnet) return [[networkOf(pool.nodeSubnet.supernet), lastOf(pool.nodeSubnet.supernet)]];
  return pool.rangeSet!.ranges.map((r) => [r.start, r.end]);
}

/** Why `pool` may not join `pools` (it could hand out an address one of them does, in its space), or null. */
export function overlapWith(pool: NamedPool, pools: Iterable<NamedPool>): string | null {
  for (const other of pools) {
    // Pools of different spaces may overlap: that is what a space is for.
    if (other.family !== pool.family || other.scope.space !== pool.scope.space) continue;
    for (const [lo, hi] of footprint(pool)) {
      for (const [olo, ohi] of footprint(other)) {
        if (lo <= ohi && olo <= hi) return `overlaps pool ${other.name} at ${formatIp(lo > olo ? lo : olo, pool.family)} in space ${pool.scope.space}`;
      }
    }
  }
  return null;
}

/** Compiles every pool and refuses two of one address space that could hand out the same address. */
export function compilePools(inputs: Record<string, NamedPoolInput>): Map<string, NamedPool> {
  const pools = new Map<string, NamedPool>();
  for (const [name, input] of Object.entries(inputs)) {
    const pool = compileNamedPool(name, input);
    const overlap = overlapWith(pool, pools.values());
    if (overlap) throw invalid(name, overlap);
    pools.set(name, pool);
  }
  return pools;
}

/** Whether an address belongs to a range set (used to find orphans after a redefinition). */
export function inRangeSet(set: RangeSet, value: bigint): boolean {
  return set.ranges.some((r) => value >= r.start && value <= r.end);
}
