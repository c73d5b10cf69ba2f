/**
 * Pool definitions in host-local's netconf format: `ranges` is a list of range sets, each a
 * list of ranges; one address is allocated from every range set (IPv4 + IPv6 = dual-stack).
 * Validation follows host-local so that an existing netconf is accepted or refused the same
 * way, with errors carrying CNI code 7.
 */
import { array, type InferOutput, maxLength, minLength, object, optional, pipe, string } from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { bitsOf, type Cidr, cidrContains, type Family, formatCidr, formatIp, lastOf, networkOf, parseCidr, parseIp } from "./address.ts";

export const RangeInputSchema = object({
  subnet: string(),
  rangeStart: optional(string()),
  rangeEnd: optional(string()),
  gateway: optional(string()),
});
export type RangeInput = InferOutput<typeof RangeInputSchema>;

/** At most 64 range sets of 64 ranges: far beyond any real netconf, small enough to bound work. */
export const RangeSetsInputSchema = pipe(array(pipe(array(RangeInputSchema), minLength(1), maxLength(64))), minLength(1), maxLength(64));
export type RangeSetsInput = InferOutput<typeof RangeSetsInputSchema>;

export interface Range {
  family: Family;
  /** The subnet, normalised to its network address. */
  subnet: Cidr;
  /** First and last address that may be handed out (network and broadcast already excluded). */
  start: bigint;
  end: bigint;
  /** Reported in results and never handed out; host-local's default is the subnet's first host. */
  gateway: bigint | null;
}

export interface RangeSet {
  family: Family;
  ranges: Range[];
  /** Canonical text, stable across key order and spelling: the range set's identity. */
  key: string;
  /** How many addresses this range set can hand out (gateways excluded). */
  size: bigint;
}

const invalid = (msg: string): IpamError => new IpamError(ErrorCode.InvalidNetworkConfig, msg);

function addressIn(text: string | undefined, what: string, family: Family): bigint | null {
  if (text === undefined || text === "") return null;
  const ip = parseIp(text);
  if (!ip) throw invalid(`invalid ${what} "${text}": not an IP address`);
  if (ip.family !== family) throw invalid(`${what} ${text} is not of the subnet's address family`);
  return ip.value;
}

export function parseRange(input: RangeInput): Range {
  const cidr = parseCidr(input.subnet);
  if (!cidr) throw invalid(`invalid subnet "${input.subnet}": not a CIDR`);
  const { family, prefix } = cidr;
  // As host-local: a subnet must leave room for a network address and at least one host.
  if (prefix > bitsOf(family) - 2) throw invalid(`network ${input.subnet} too small to allocate from`);
  const network = networkOf(cidr);
  if (network !== cidr.address) {
    throw invalid(`network ${input.subnet} has host bits set; for a /${prefix} the network address is ${formatIp(network, family)}`);
  }
  const subnet: Cidr = { family, address: network, prefix };
  const last = lastOf(subnet);
  const gateway = addressIn(input.gateway, "gateway", family) ?? network + 1n;
  // The network address is never handed out, nor the broadcast address in IPv4.
  const firstUsable = network + 1n;
  const lastUsable = family === 4 ? last - 1n : last;
  const start = addressIn(input.rangeStart, "rangeStart", family) ?? firstUsable;
  const end = addressIn(input.rangeEnd, "rangeEnd", family) ?? lastUsable;
  for (const [what, value] of [["rangeStart", start], ["rangeEnd", end]] as const) {
    if (!cidrContains(subnet, family, value)) throw invalid(`${what} ${formatIp(value, family)} not in network ${input.subnet}`);
  }
  if (start > end) throw invalid(`rangeStart ${formatIp(start, family)} is after rangeEnd ${formatIp(end, family)}`);
  const from = start < firstUsable ? firstUsable : start;
  const to = end > lastUsable ? lastUsable : end;
  if (from > to) throw invalid(`range ${formatIp(start, family)}-${formatIp(end, family)} holds only reserved addresses`);
  return { family, subnet, start: from, end: to, gateway };
}

export function rangeText(r: Range): string {
  const span = `${formatIp(r.start, r.family)}-${formatIp(r.end, r.family)}`;
  const gw = r.gateway === null ? "" : ` gw ${formatIp(r.gateway, r.family)}`;
  return `${formatCidr(r.subnet.address, r.family, r.subnet.prefix)}[${span}${gw}]`;
}

const overlaps = (a: Range, b: Range): boolean => a.family === b.family && a.start <= b.end && b.start <= a.end;

export function parseRangeSet(input: RangeInput[]): RangeSet {
  const ranges = input.map(parseRange);
  const family = ranges[0]!.family;
  let size = 0n;
  for (const [i, r] of ranges.entries()) {
    if (r.family !== family) throw invalid(`range set mixes IPv4 and IPv6: ${rangeText(ranges[0]!)} and ${rangeText(r)}`);
    for (const other of ranges.slice(0, i)) {
      if (overlaps(r, other)) throw invalid(`range ${rangeText(r)} overlaps with ${rangeText(other)}`);
    }
    const hasGateway = r.gateway !== null && r.gateway >= r.start && r.gateway <= r.end;
    size += r.end - r.start + 1n - (hasGateway ? 1n : 0n);
  }
  return { family, ranges, key: ranges.map(rangeText).join(","), size };
}

export function parseRangeSets(input: RangeSetsInput): RangeSet[] {
  const sets = input.map(parseRangeSet);
  for (const [i, set] of sets.entries()) {
    for (const [j, other] of sets.slice(0, i).entries()) {
      for (const r of set.ranges) {
        for (const o of other.ranges) {
          if (overlaps(r, o)) throw invalid(`range set ${i} overlaps with range set ${j}: ${rangeText(r)} and ${rangeText(o)}`);
        }
      }
    }
  }
  return sets;
}

/** The range of a set that holds an address, if any (gateway included: callers refuse it). */
export function rangeHolding(set: RangeSet, family: Family, value: bigint): Range | null {
  if (family !== set.family) return null;
  return set.ranges.find((r) => value >= r.start && value <= r.end) ?? null;
}
