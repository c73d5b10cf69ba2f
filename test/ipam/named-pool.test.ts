import { describe, expect, test } from "bun:test";
import { IpamError } from "../../src/errors.ts";
import { formatIp, parseCidr } from "../../src/ipam/address.ts";
import { compileNamedPool, compilePools, type NamedPoolInput, nodeRangeSet, parseSpan } from "../../src/ipam/named-pool.ts";
import { nextFreeSubnet, subnetFits } from "../../src/ipam/node-subnet.ts";

const spans = (name: string, input: NamedPoolInput) =>
  compileNamedPool(name, input).rangeSet!.ranges.map((r) => `${formatIp(r.start, r.family)}-${formatIp(r.end, r.family)}`);

function refused(fn: () => unknown, part: string): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(IpamError);
  expect((error as IpamError).code).toBe(7);
  expect((error as IpamError).message).toContain(part);
}

describe("Cluster API in-cluster pool rules", () => {
  test("addresses mix CIDRs, ranges and single addresses", () => {
    expect(spans("p", { addresses: ["10.0.0.10", "10.0.0.24-10.0.0.32", "10.0.0.128/28"], prefix: 24, gateway: "10.0.0.1" })).toEqual([
      "10.0.0.10-10.0.0.10",
      "10.0.0.24-10.0.0.32",
      "10.0.0.128-10.0.0.143",
    ]);
  });

  test("network and broadcast of the subnet are reserved, and the gateway is never handed out", () => {
    expect(spans("p", { addresses: ["10.0.0.0/24"], prefix: 24, gateway: "10.0.0.1" })).toEqual(["10.0.0.2-10.0.0.254"]);
    expect(spans("p", { addresses: ["fd00::/120"], prefix: 120, gateway: "fd00::1" })).toEqual(["fd00::2-fd00::ff"]);
  });

  test("allocateReservedIPAddresses hands out network and broadcast too", () => {
    expect(spans("p", { addresses: ["10.0.0.0/30"], prefix: 30, allocateReservedIPAddresses: true })).toEqual(["10.0.0.0-10.0.0.3"]);
  });

  test("excludedAddresses in all three forms are taken out", () => {
    expect(spans("p", { addresses: ["10.0.0.0/24"], prefix: 24, gateway: "10.0.0.1", excludedAddresses: ["10.0.0.5", "10.0.0.10-10.0.0.19", "10.0.0.128/25"] })).toEqual([
      "10.0.0.2-10.0.0.4",
      "10.0.0.6-10.0.0.9",
      "10.0.0.20-10.0.0.127",
    ]);
  });

  test("the result's prefix is the pool's prefix, the gateway the pool's", () => {
    const set = compileNamedPool("p", { addresses: ["10.0.0.10-10.0.0.20"], prefix: 16, gateway: "10.0.255.254" }).rangeSet!;
    expect(set.ranges[0]!.subnet.prefix).toBe(16);
    expect(formatIp(set.ranges[0]!.gateway!, 4)).toBe("10.0.255.254");
  });

  test("validation: addresses outside the prefix, gateway outside, mixed families, empty after exclusions, nonsense", () => {
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.10", "10.0.1.10"], prefix: 24 }), "outside 10.0.0.0/24");
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.0/24"], prefix: 24, gateway: "10.9.0.1" }), "outside 10.9.0.0/24");
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.1", "fd00::1"], prefix: 24 }), "mixes IPv4 and IPv6");
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.0/24"], prefix: 24, gateway: "fd00::1" }), "address family");
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.0/30"], prefix: 30, gateway: "10.0.0.1", excludedAddresses: ["10.0.0.2"] }), "no address is left");
    refused(() => compileNamedPool("p", { addresses: ["10.0.0.9-10.0.0.1"], prefix: 24 }), "not a CIDR, a range a-b or an address");
    refused(() => compileNamedPool("p", { addresses: [], prefix: 24 }), "empty");
  });

  test("two pools that overlap are refused", () => {
    refused(() => compilePools({ a: { addresses: ["10.0.0.0/24"], prefix: 24 }, b: { addresses: ["10.0.0.100-10.0.0.200"], prefix: 24 } }), "overlaps pool a");
    refused(() => compilePools({ a: { addresses: ["10.0.0.0/24"], prefix: 24 }, n: { supernet: "10.0.0.0/16", nodeSubnetPrefix: 24 } }), "overlaps pool a");
    expect(compilePools({ a: { addresses: ["10.0.0.0/24"], prefix: 24 }, b: { addresses: ["fd00::/64"], prefix: 64 } }).size).toBe(2);
  });

  test("a /8 and a /48 compile without enumerating their addresses", () => {
    expect(compileNamedPool("v4", { addresses: ["10.0.0.0/8"], prefix: 8 }).rangeSet!.size).toBe(2n ** 24n - 2n);
    expect(compileNamedPool("v6", { addresses: ["fd00:1::/48"], prefix: 48 }).rangeSet!.size).toBe(2n ** 80n - 1n);
  });

  test("spans", () => {
    expect(parseSpan("10.0.0.0/31")).toEqual({ family: 4, lo: 0x0a000000n, hi: 0x0a000001n });
    expect(parseSpan("fd00::1 - fd00::3")).toEqual({ family: 6, lo: (0xfd00n << 112n) + 1n, hi: (0xfd00n << 112n) + 3n });
    expect(parseSpan("10.0.0.1-fd00::1")).toBeNull();
  });
});

describe("per-node subnets of a supernet", () => {
  const pool = compileNamedPool("nodes", { supernet: "172.18.0.0/16", nodeSubnetPrefix: 24, gateway: "0.0.0.1" });

  test("the next free subnet is the lowest unclaimed one", () => {
    const spec = pool.nodeSubnet!;
    const s = (text: string) => parseCidr(text)!.address;
    expect(nextFreeSubnet(spec, [])).toBe(s("172.18.0.0/24"));
    expect(nextFreeSubnet(spec, [s("172.18.0.0/24"), s("172.18.2.0/24")])).toBe(s("172.18.1.0/24"));
    const all = Array.from({ length: 256 }, (_, i) => s(`172.18.${i}.0/24`));
    expect(nextFreeSubnet(spec, all)).toBeNull();
    expect(subnetFits(spec, parseCidr("172.18.7.0/24")!)).toBe(true);
    expect(subnetFits(spec, parseCidr("172.18.7.0/25")!)).toBe(false);
    expect(subnetFits(spec, parseCidr("172.19.0.0/24")!)).toBe(false);
  });

  test("the gateway shorthand 0.0.0.1 becomes each subnet's first host; network and broadcast are reserved", () => {
    const set = nodeRangeSet(pool, parseCidr("172.18.5.0/24")!.address);
    expect(formatIp(set.ranges[0]!.gateway!, 4)).toBe("172.18.5.1");
    expect(set.ranges.map((r) => `${formatIp(r.start, 4)}-${formatIp(r.end, 4)}`)).toEqual(["172.18.5.2-172.18.5.254"]);
  });

  test("validation of supernet pools", () => {
    refused(() => compileNamedPool("n", { supernet: "172.18.0.0/16", nodeSubnetPrefix: 8 }), "shorter than the supernet");
    refused(() => compileNamedPool("n", { supernet: "172.18.0.0/16", nodeSubnetPrefix: 31 }), "no room for hosts");
    refused(() => compileNamedPool("n", { supernet: "172.18.0.1/16", nodeSubnetPrefix: 24 }), "host bits");
  });
});
