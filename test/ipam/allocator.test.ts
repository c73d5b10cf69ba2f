import { describe, expect, test } from "bun:test";
import { formatIp, parseIp } from "../../src/ipam/address.ts";
import { allocateNext, checkStatic } from "../../src/ipam/allocator.ts";
import { ExtentSet } from "../../src/ipam/freespace.ts";
import { parseRangeSet, type RangeInput } from "../../src/ipam/pool.ts";

/** Allocates n addresses in a row the way the daemon does: mark taken, move the cursor. */
function allocateMany(ranges: RangeInput[], n: number, taken = new ExtentSet(), start: string | null = null): (string | null)[] {
  const set = parseRangeSet(ranges);
  let cursor = start === null ? null : parseIp(start)!.value;
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const picked = allocateNext(set, taken, cursor);
    if (!picked) {
      out.push(null);
      continue;
    }
    taken.add(picked.value);
    cursor = picked.value;
    out.push(formatIp(picked.value, set.family));
  }
  return out;
}

const ip = (text: string) => parseIp(text)!.value;

describe("allocation order (host-local's)", () => {
  test("with gateway .1 the first address is .2, then in order", () => {
    expect(allocateMany([{ subnet: "10.0.0.0/24" }], 3)).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
  });

  test("network, gateway and broadcast are never handed out: a /29 gives exactly .2-.6", () => {
    expect(allocateMany([{ subnet: "10.0.0.0/29" }], 6)).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", null]);
  });

  test("a gateway in the middle of the range is stepped over", () => {
    expect(allocateMany([{ subnet: "10.0.0.0/29", gateway: "10.0.0.3" }], 6)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6", null]);
  });

  test("continues after the last handed out address and wraps, so a released one is not reused at once", () => {
    const taken = new ExtentSet();
    const set = parseRangeSet([{ subnet: "10.0.0.0/29" }]);
    for (const a of ["10.0.0.2", "10.0.0.3", "10.0.0.4"]) taken.add(ip(a));
    taken.delete(ip("10.0.0.3")); // released
    expect(formatIp(allocateNext(set, taken, ip("10.0.0.4"))!.value, 4)).toBe("10.0.0.5");
    expect(formatIp(allocateNext(set, taken, ip("10.0.0.6"))!.value, 4)).toBe("10.0.0.3"); // wrapped
  });

  test("moves to the next range of the set at a range's end, and wraps to the first", () => {
    const ranges = [
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.11" },
      { subnet: "10.0.1.0/24", rangeStart: "10.0.1.10", rangeEnd: "10.0.1.11" },
    ];
    expect(allocateMany(ranges, 5)).toEqual(["10.0.0.10", "10.0.0.11", "10.0.1.10", "10.0.1.11", null]);
    const taken = new ExtentSet();
    taken.add(ip("10.0.1.11"));
    expect(allocateMany(ranges, 2, taken, "10.0.1.10")).toEqual(["10.0.0.10", "10.0.0.11"]);
  });

  test("a cursor outside every range (pool redefined) restarts at the first range", () => {
    expect(allocateMany([{ subnet: "10.0.0.0/24" }], 1, new ExtentSet(), "192.168.0.1")).toEqual(["10.0.0.2"]);
  });

  test("IPv6 /64: first is ::2, the last address is usable, no broadcast", () => {
    expect(allocateMany([{ subnet: "fd00::/64" }], 2)).toEqual(["fd00::2", "fd00::3"]);
    expect(allocateMany([{ subnet: "fd00::/126" }], 3)).toEqual(["fd00::2", "fd00::3", null]);
  });

  test("99.9% full and fragmented: still finds the free ones in order", () => {
    const set = parseRangeSet([{ subnet: "10.0.0.0/16" }]);
    const taken = new ExtentSet();
    const first = ip("10.0.0.2");
    const last = ip("10.0.255.254");
    for (let x = first; x <= last; x++) taken.add(x);
    const freed = [ip("10.0.3.7"), ip("10.0.200.1"), ip("10.0.9.9")];
    for (const x of freed) taken.delete(x);
    const got: bigint[] = [];
    let cursor: bigint | null = ip("10.0.100.0");
    for (let i = 0; i < 4; i++) {
      const picked = allocateNext(set, taken, cursor);
      if (!picked) break;
      taken.add(picked.value);
      cursor = picked.value;
      got.push(picked.value);
    }
    expect(got.map((x) => formatIp(x, 4))).toEqual(["10.0.200.1", "10.0.3.7", "10.0.9.9"]);
  });
});

describe("static addresses", () => {
  const set = parseRangeSet([{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" }]);
  test("inside the range and free: accepted", () => {
    expect(checkStatic(set, new ExtentSet(), 4, ip("10.0.0.15")).ok).toBe(true);
  });
  test("taken, gateway, outside or of the other family: refused with the reason", () => {
    const taken = new ExtentSet();
    taken.add(ip("10.0.0.15"));
    expect(checkStatic(set, taken, 4, ip("10.0.0.15"))).toEqual({ ok: false, reason: "taken" });
    expect(checkStatic(set, taken, 4, ip("10.0.0.30"))).toEqual({ ok: false, reason: "outside" });
    expect(checkStatic(set, taken, 6, 15n)).toEqual({ ok: false, reason: "outside" });
    const withGw = parseRangeSet([{ subnet: "10.0.0.0/24", gateway: "10.0.0.15" }]);
    expect(checkStatic(withGw, taken, 4, ip("10.0.0.15"))).toEqual({ ok: false, reason: "gateway" });
  });
});
