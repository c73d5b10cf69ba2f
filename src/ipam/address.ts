/**
 * IPv4 and IPv6 addresses as bigints: one representation for both families keeps range
 * math identical for a /24 and a /64. No dependencies, no I/O.
 */
export type Family = 4 | 6;

export interface Ip {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** The address as written (may have host bits set, e.g. an interface address). */
  address: bigint;
  prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

const IPV4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return null; // rejects leading zeros, as Go's net.ParseIP does
    value = value * 256 + Number(part);
  }
  return BigInt(value);
}

function parseIpv6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45) return null;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    // An embedded IPv4 tail ("::ffff:1.2.3.4") is just the last two groups written otherwise.
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    const n = Number(v4);
    return parseIpv6(`${text.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (s: string): string[] | null => {
    if (s === "") return [];
    const groups = s.split(":");
    return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? groups : null;
  };
  let groups: string[];
  if (halves.length === 2) {
    const left = groupsOf(halves[0]!);
    const right = groupsOf(halves[1]!);
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  } else {
    const all = groupsOf(text);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return value;
}

export function parseIp(text: string): Ip | null {
  if (typeof text !== "string") return null;
  if (text.includes(":")) {
    const value = parseIpv6(text);
    return value === null ? null : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === null ? null : { family: 4, value };
}

export function formatIp(value: bigint, family: Family): string {
  if (family === 4) {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

export function parseCidr(text: string): Cidr | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > bitsOf(ip.family)) return null;
  return { family: ip.family, address: ip.value, prefix };
}

/** All-ones in the host part of a prefix. */
export function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefix)) - 1n;
}

export function networkOf(cidr: Cidr): bigint {
  return cidr.address & ~hostMask(cidr.family, cidr.prefix);
}

/** The last address of the prefix: the broadcast address in IPv4. */
export function lastOf(cidr: Cidr): bigint {
  return networkOf(cidr) | hostMask(cidr.family, cidr.prefix);
}

export function cidrContains(cidr: Cidr, family: Family, value: bigint): boolean {
  return family === cidr.family && value >= networkOf(cidr) && value <= lastOf(cidr);
}

export function formatCidr(value: bigint, family: Family, prefix: number): string {
  return `${formatIp(value, family)}/${prefix}`;
}

/** Canonical text of an address, or null when it is not one: how addresses are keyed everywhere. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip.value, ip.family) : null;
}

/**
 * A key whose byte order is address order: the family, then the address big-endian. Stores
 * index it so that lists come out IPv4 first, then numerically, a page at a time.
 */
export function addressOrderKey(family: Family, value: bigint): Uint8Array {
  const bytes = bitsOf(family) / 8;
  const key = new Uint8Array(1 + bytes);
  key[0] = family;
  for (let i = bytes, v = value; i >= 1; i--, v >>= 8n) key[i] = Number(v & 0xffn);
  return key;
}
