import { describe, expect, test } from "bun:test";
import { IpamError } from "../../src/errors.ts";
import { formatIp } from "../../src/ipam/address.ts";
import { parseRange, parseRangeSet, parseRangeSets, type RangeInput } from "../../src/ipam/pool.ts";

function invalid(fn: () => unknown, msgPart: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IpamError);
    expect((err as IpamError).code).toBe(7);
    expect((err as IpamError).message).toContain(msgPart);
    return;
  }
  throw new Error(`expected an invalid-netconf error containing "${msgPart}"`);
}

const span = (input: RangeInput) => {
  const r = parseRange(input);
  return [formatIp(r.start, r.family), formatIp(r.end, r.family), formatIp(r.gateway!, r.family)];
};

describe("host-local range defaults", () => {
  test("IPv4: network and broadcast excluded, gateway defaults to .1", () => {
    expect(span({ subnet: "10.0.0.0/24" })).toEqual(["10.0.0.1", "10.0.0.254", "10.0.0.1"]);
  });
  test("IPv6: only the network (subnet-router anycast) address is excluded", () => {
    expect(span({ subnet: "fd00::/120" })).toEqual(["fd00::1", "fd00::ff", "fd00::1"]);
  });
  test("rangeStart, rangeEnd and gateway are kept; an explicit broadcast end is clamped", () => {
    expect(span({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.255", gateway: "10.0.0.254" })).toEqual(["10.0.0.10", "10.0.0.254", "10.0.0.254"]);
  });
  test("/30 is the smallest IPv4 subnet, /126 the smallest IPv6", () => {
    expect(span({ subnet: "10.0.0.0/30" })).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.1"]);
    expect(span({ subnet: "fd00::/126" })).toEqual(["fd00::1", "fd00::3", "fd00::1"]);
  });
  test("a /8 and a /48 are accepted and sized without enumerating them", () => {
    expect(parseRangeSet([{ subnet: "10.0.0.0/8" }]).size).toBe(2n ** 24n - 3n);
    expect(parseRangeSet([{ subnet: "fd00:1::/48" }]).size).toBe(2n ** 80n - 2n);
  });
});

describe("host-local range validation (CNI code 7)", () => {
  test("bad CIDR", () => invalid(() => parseRange({ subnet: "10.0.0.0/33" }), "invalid subnet"));
  test("not a CIDR", () => invalid(() => parseRange({ subnet: "banana" }), "invalid subnet"));
  test("host bits set", () => invalid(() => parseRange({ subnet: "10.0.0.5/24" }), "host bits set"));
  test("/31, /32, /127, /128 are too small", () => {
    for (const subnet of ["10.0.0.0/31", "10.0.0.0/32", "fd00::/127", "fd00::/128"]) invalid(() => parseRange({ subnet }), "too small");
  });
  test("rangeStart outside its subnet", () => invalid(() => parseRange({ subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }), "rangeStart 10.0.1.5 not in network"));
  test("rangeEnd outside its subnet", () => invalid(() => parseRange({ subnet: "10.0.0.0/24", rangeEnd: "10.0.1.5" }), "rangeEnd 10.0.1.5 not in network"));
  test("rangeStart after rangeEnd", () => invalid(() => parseRange({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.5" }), "after rangeEnd"));
  test("gateway of the other family", () => invalid(() => parseRange({ subnet: "10.0.0.0/24", gateway: "fd00::1" }), "address family"));
  test("gateway that is not an address", () => invalid(() => parseRange({ subnet: "10.0.0.0/24", gateway: "10.0.0.x" }), "invalid gateway"));
  test("overlapping ranges in one set", () =>
    invalid(() => parseRangeSet([{ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/25" }]), "overlaps"));
  test("mixed families in one set", () => invalid(() => parseRangeSet([{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]), "mixes IPv4 and IPv6"));
  test("overlapping range sets", () =>
    invalid(() => parseRangeSets([[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.0/16" }]]), "range set 1 overlaps with range set 0"));
  test("disjoint ranges of one subnet and a dual-stack pair are fine", () => {
    const sets = parseRangeSets([
      [
        { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" },
        { subnet: "10.0.0.0/24", rangeStart: "10.0.0.20", rangeEnd: "10.0.0.29" },
      ],
      [{ subnet: "fd00::/64" }],
    ]);
    expect(sets.map((s) => s.family)).toEqual([4, 6]);
    expect(sets[0]!.size).toBe(20n);
  });
  test("the identity key ignores spelling", () => {
    expect(parseRangeSet([{ subnet: "FD00:0::/64" }]).key).toBe(parseRangeSet([{ subnet: "fd00::/64", gateway: "fd00::1" }]).key);
  });
});
