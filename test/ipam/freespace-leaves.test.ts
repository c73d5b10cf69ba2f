import { describe, expect, test } from "bun:test";
import { ExtentSet } from "../../src/ipam/freespace.ts";

/** A small deterministic PRNG, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Compares every query with a plain Set over [base, base + span). */
function agree(model: Set<bigint>, set: ExtentSet, base: bigint, span: number): void {
  expect(set.size).toBe(model.size);
  let extents = 0;
  let prevTaken = false;
  let taken = 0;
  for (let d = 0; d < span; d++) {
    const x = base + BigInt(d);
    const has = model.has(x);
    expect(set.has(x)).toBe(has);
    if (has && !prevTaken) extents++;
    if (has) taken++;
    prevTaken = has;
  }
  expect(set.extentCount).toBe(extents);
  expect(set.countIn(base, base + BigInt(span - 1))).toBe(taken);
  expect([...set.extents()].length).toBe(extents);
  const from = base + BigInt(Math.floor(span / 3));
  const to = base + BigInt(Math.floor((2 * span) / 3));
  let inside = 0;
  let first: bigint | null = null;
  for (let x = from; x <= to; x++) {
    if (model.has(x)) inside++;
    else if (first === null) first = x;
  }
  expect(set.countIn(from, to)).toBe(inside);
  expect(set.firstFree(from, to)).toBe(first);
}

describe("ExtentSet across many leaves", () => {
  for (const [name, base] of [["IPv4 (narrow keys)", 0x0a000000n], ["IPv6 (wide keys)", 0x20010db8n << 96n]] as const) {
    test(`${name}: thousands of random adds and deletes agree with a plain set`, () => {
      const random = rng(42);
      const span = 6000;
      const set = new ExtentSet();
      const model = new Set<bigint>();
      for (let step = 0; step < 20_000; step++) {
        const x = base + BigInt(Math.floor(random() * span));
        if (random() < 0.6) expect(set.add(x)).toBe(!model.has(x) && (model.add(x), true));
        else expect(set.delete(x)).toBe(model.delete(x));
        if (step % 5000 === 4999) agree(model, set, base, span);
      }
      agree(model, set, base, span);
    });
  }

  test("addAll builds the same set as one add per address, duplicates and all", () => {
    const random = rng(7);
    const values = Array.from({ length: 5000 }, () => 0x0a000000n + BigInt(Math.floor(random() * 9000)));
    const bulk = new ExtentSet();
    const model = new Set(values);
    expect(bulk.addAll([...values])).toBe(model.size);
    agree(model, bulk, 0x0a000000n, 9000);
    // On a set that is not empty it adds one by one and still counts only the new ones.
    expect(bulk.addAll([0x0a000000n + 9001n, values[0]!])).toBe(1);
    expect(bulk.has(0x0a000000n + 9001n)).toBe(true);
  });

  test("a narrow set switches to bigint keys when an address beyond 2^53 arrives", () => {
    const set = new ExtentSet();
    for (let x = 1n; x < 400n; x += 2n) set.add(x);
    const big = 1n << 100n;
    expect(set.add(big)).toBe(true);
    expect(set.add(big + 1n)).toBe(true);
    expect(set.has(3n)).toBe(true);
    expect(set.has(4n)).toBe(false);
    expect(set.firstFree(big, big + 5n)).toBe(big + 2n);
    expect(set.countIn(0n, big * 2n)).toBe(202);
    expect(set.extentCount).toBe(201);
  });
});
