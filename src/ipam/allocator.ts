/**
 * Pure allocation: (range set, taken addresses, cursor) → address. No I/O, no state of its
 * own. Order is host-local's: the address after the last one handed out in this range set,
 * moving on to the next range at a range's end and wrapping around to the first, so a
 * just-released address is not reused at once.
 */
import type { TakenAddresses } from "./freespace.ts";
import type { Family } from "./address.ts";
import { type Range, type RangeSet, rangeHolding } from "./pool.ts";

export interface Allocation {
  value: bigint;
  range: Range;
}

/** The first free address in [from, to] of a range, stepping over its gateway. */
function firstFreeIn(taken: TakenAddresses, range: Range, from: bigint, to: bigint): bigint | null {
  let candidate = taken.firstFree(from, to);
  if (candidate !== null && candidate === range.gateway) candidate = taken.firstFree(candidate + 1n, to);
  return candidate;
}

/**
 * Picks the next free address of a range set, or null when it is exhausted. O(log n) per
 * range visited: every lookup is one descent of the extent tree.
 */
export function allocateNext(set: RangeSet, taken: TakenAddresses, cursor: bigint | null): Allocation | null {
  const ranges = set.ranges;
  const at = cursor;
  let first = at === null ? -1 : ranges.findIndex((r) => at >= r.start && at <= r.end);
  // A cursor outside every range (the pool was redefined) restarts at the first range.
  if (first < 0) {
    cursor = null;
    first = 0;
  }
  for (let step = 0; step <= ranges.length; step++) {
    const range = ranges[(first + step) % ranges.length]!;
    let from = range.start;
    let to = range.end;
    if (cursor !== null && step === 0) from = cursor + 1n;
    if (step === ranges.length) {
      // Back where we started: only the part up to the cursor is left to look at.
      if (cursor === null) break;
      to = cursor;
    }
    const value = firstFreeIn(taken, range, from, to);
    if (value !== null) return { value, range };
  }
  return null;
}

export type StaticCheck = { ok: true; range: Range } | { ok: false; reason: "outside" | "gateway" | "taken" };

/** Whether a requested (static) address can be given from this range set. */
export function checkStatic(set: RangeSet, taken: TakenAddresses, family: Family, value: bigint): StaticCheck {
  const range = rangeHolding(set, family, value);
  if (!range) return { ok: false, reason: "outside" };
  if (value === range.gateway) return { ok: false, reason: "gateway" };
  if (taken.has(value)) return { ok: false, reason: "taken" };
  return { ok: true, range };
}
