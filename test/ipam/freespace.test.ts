import { describe, expect, test } from "bun:test";
import { ExtentSet } from "../../src/ipam/freespace.ts";

/** A plain Set as the reference model: the extent tree must agree with it on every query. */
function checkAgainst(model: Set<bigint>, set: ExtentSet, lo: bigint, hi: bigint): void {
  expect(set.size).toBe(model.size);
  for (let x = lo; x <= hi; x++) {
    expect(set.has(x)).toBe(model.has(x));
    let expected: bigint | null = null;
    for (let y = x; y <= hi; y++) {
      if (!model.has(y)) {
        expected = y;
        break;
      }
    }
    expect(set.firstFree(x, hi)).toBe(expected);
  }
}

describe("ExtentSet", () => {
  test("merges neighbours into one extent and splits on delete", () => {
    const set = new ExtentSet();
    expect(set.add(5n)).toBe(true);
    expect(set.add(7n)).toBe(true);
    expect(set.extentCount).toBe(2);
    expect(set.add(6n)).toBe(true); // joins both sides
    expect(set.extentCount).toBe(1);
    expect(set.add(6n)).toBe(false);
    expect(set.firstFree(5n, 100n)).toBe(8n);
    expect(set.delete(6n)).toBe(true); // splits
    expect(set.extentCount).toBe(2);
    expect(set.delete(6n)).toBe(false);
    expect(set.firstFree(5n, 100n)).toBe(6n);
    expect(set.size).toBe(2);
  });

  test("agrees with a reference set under random adds and deletes", () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const model = new Set<bigint>();
    const set = new ExtentSet();
    for (let i = 0; i < 4000; i++) {
      const x = BigInt(Math.floor(random() * 200));
      if (random() < 0.6) expect(set.add(x)).toBe(!model.has(x) && model.add(x) !== undefined);
      else expect(set.delete(x)).toBe(model.delete(x));
      if (i % 500 === 0) checkAgainst(model, set, 0n, 210n);
    }
    checkAgainst(model, set, 0n, 210n);
    expect(set.countIn(0n, 210n)).toBe(model.size);
    expect(set.countIn(50n, 99n)).toBe([...model].filter((x) => x >= 50n && x <= 99n).length);
  });

  test("a /8 and a /64 cost nothing until used, and a contiguous run stays one extent", () => {
    const set = new ExtentSet();
    const base = 0xfd00n << 112n;
    expect(set.firstFree(base, base + (1n << 64n) - 1n)).toBe(base);
    for (let i = 0n; i < 100_000n; i++) set.add(base + i);
    expect(set.extentCount).toBe(1);
    expect(set.firstFree(base, base + (1n << 64n) - 1n)).toBe(base + 100_000n);
  });

  test("stays balanced: 200k fragmented extents, lookups still answer", () => {
    const set = new ExtentSet();
    for (let i = 0n; i < 400_000n; i += 2n) set.add(i);
    expect(set.extentCount).toBe(200_000);
    expect(set.firstFree(0n, 1_000_000n)).toBe(1n);
    expect(set.firstFree(399_998n, 1_000_000n)).toBe(399_999n);
    for (let i = 1n; i < 400_000n; i += 2n) set.add(i);
    expect(set.extentCount).toBe(1);
    expect(set.firstFree(0n, 399_999n)).toBeNull();
  });
});
