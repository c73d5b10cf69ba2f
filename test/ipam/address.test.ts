import { describe, expect, test } from "bun:test";
import { canonicalIp, cidrContains, formatIp, lastOf, networkOf, parseCidr, parseIp } from "../../src/ipam/address.ts";

describe("parseIp / formatIp", () => {
  test("IPv4 round-trips and orders as a number", () => {
    expect(parseIp("10.0.0.1")).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseIp("255.255.255.255")!.value).toBe(0xffffffffn);
    expect(formatIp(0x0a000001n, 4)).toBe("10.0.0.1");
    expect(formatIp(0n, 4)).toBe("0.0.0.0");
  });

  test("rejects malformed IPv4, including leading zeros as Go's net.ParseIP does", () => {
    for (const bad of ["10.0.0", "10.0.0.256", "10.0.0.01", "1.2.3.4.5", "a.b.c.d", "", " 10.0.0.1", "10..0.1"]) {
      expect(parseIp(bad)).toBeNull();
    }
  });

  test("IPv6 parses every spelling and formats canonically (RFC 5952)", () => {
    expect(parseIp("::")).toEqual({ family: 6, value: 0n });
    expect(parseIp("::1")!.value).toBe(1n);
    expect(formatIp(parseIp("2001:DB8:0:0:0:0:0:1")!.value, 6)).toBe("2001:db8::1");
    expect(formatIp(parseIp("fd00:0:0:1::")!.value, 6)).toBe("fd00:0:0:1::");
    expect(formatIp(parseIp("2001:db8:0:1:1:1:1:1")!.value, 6)).toBe("2001:db8:0:1:1:1:1:1"); // one zero group is not compressed
    expect(formatIp(parseIp("2001:0:0:1:0:0:0:1")!.value, 6)).toBe("2001:0:0:1::1"); // the longest run wins
    expect(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!.value, 6)).toBe("2001:db8::1:0:0:1"); // first of equal runs
    expect(formatIp((1n << 128n) - 1n, 6)).toBe("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  });

  test("IPv6 with an embedded IPv4 tail", () => {
    expect(parseIp("::ffff:10.0.0.1")!.value).toBe((0xffffn << 32n) | 0x0a000001n);
    expect(parseIp("64:ff9b::192.0.2.33")!.value).toBe((0x64n << 112n) | (0xff9bn << 96n) | 0xc0000221n);
  });

  test("rejects malformed IPv6", () => {
    for (const bad of [":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1", "::ffff:1.2.3", ":1", "1:"]) {
      expect(parseIp(bad)).toBeNull();
    }
  });

  test("canonicalIp keys equal addresses equally", () => {
    expect(canonicalIp("FD00:0::0:2")).toBe("fd00::2");
    expect(canonicalIp("nope")).toBeNull();
  });
});

describe("CIDR math", () => {
  const cases: [string, string, string][] = [
    ["10.1.2.0/24", "10.1.2.0", "10.1.2.255"],
    ["10.1.2.3/31", "10.1.2.2", "10.1.2.3"],
    ["10.1.2.3/32", "10.1.2.3", "10.1.2.3"],
    ["10.0.0.0/8", "10.0.0.0", "10.255.255.255"],
    ["fd00::/64", "fd00::", "fd00::ffff:ffff:ffff:ffff"],
    ["fd00::5/127", "fd00::4", "fd00::5"],
    ["fd00::5/128", "fd00::5", "fd00::5"],
    ["0.0.0.0/0", "0.0.0.0", "255.255.255.255"],
  ];
  for (const [text, first, last] of cases) {
    test(`${text} spans ${first} … ${last}`, () => {
      const cidr = parseCidr(text)!;
      expect(formatIp(networkOf(cidr), cidr.family)).toBe(first);
      expect(formatIp(lastOf(cidr), cidr.family)).toBe(last);
      expect(cidrContains(cidr, cidr.family, networkOf(cidr))).toBe(true);
      expect(cidrContains(cidr, cidr.family, lastOf(cidr))).toBe(true);
      if (networkOf(cidr) > 0n) expect(cidrContains(cidr, cidr.family, networkOf(cidr) - 1n)).toBe(false);
    });
  }

  test("a family never contains the other family's numbers", () => {
    expect(cidrContains(parseCidr("0.0.0.0/0")!, 6, 1n)).toBe(false);
  });

  test("rejects malformed CIDRs", () => {
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/", "/24", "10.0.0.0/2a"]) {
      expect(parseCidr(bad)).toBeNull();
    }
  });
});
