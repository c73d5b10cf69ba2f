/**
 * Block affinity for a shared store, after Calico's IPAM: a pool is cut into blocks (/26 IPv4,
 * /122 IPv6 by default); a node claims a block (a store operation: no two nodes can hold one)
 * and allocates from its own blocks, so daemons on different nodes rarely contend for one
 * address. When its blocks are full it claims a free block; only when the pool has no free
 * block does it borrow from other nodes' blocks (every write is still a compare-and-swap, so
 * borrowing is safe, only slower). Blocks of a node that is gone are given up once empty.
 * The functions here are pure; the engine reads the owners and applies the claims.
 */
import { bitsOf, type Family, formatCidr } from "../ipam/address.ts";
import type { TakenAddresses } from "../ipam/freespace.ts";
import type { Range, RangeSet } from "../ipam/pool.ts";
import type { Block } from "../store/store.ts";
import { emptyPlan, type Plan } from "./plan.ts";

export interface BlockSizes {
  v4: number;
  v6: number;
}

export const DEFAULT_BLOCK_SIZES: BlockSizes = { v4: 26, v6: 122 };

const prefixOf = (sizes: BlockSizes, family: Family): number => (family === 4 ? sizes.v4 : sizes.v6);
const spanOf = (sizes: BlockSizes, family: Family): bigint => 1n << BigInt(bitsOf(family) - prefixOf(sizes, family));

/** The part of a range set inside this node's blocks, as a range set of its own (same key; empty: none). */
export function ownView(owned: ReadonlyMap<bigint, string>, set: RangeSet, sizes: BlockSizes): RangeSet {
  const blocks = [...owned.keys()].sort((a, b) => (a < b ? -1 : 1));
  const span = spanOf(sizes, set.family);
  const ranges: Range[] = [];
  for (const r of set.ranges) {
    for (const b of blocks) {
      const lo = b > r.start ? b : r.start;
      const hi = b + span - 1n < r.end ? b + span - 1n : r.end;
      if (lo <= hi) ranges.push({ ...r, start: lo, end: hi });
    }
  }
  ranges.sort((a, b) => (a.start < b.start ? -1 : 1));
  return { family: set.family, ranges, key: set.key, size: ranges.reduce((n, r) => n + r.end - r.start + 1n, 0n) };
}

/** The lowest block of the set that nobody owns and that has a free address (null: time to borrow). */
export function freeBlock(owners: Set<bigint>, set: RangeSet, taken: TakenAddresses, sizes: BlockSizes): string | null {
  const span = spanOf(sizes, set.family);
  for (const r of set.ranges) {
    for (let b = r.start - (r.start % span); b <= r.end; b += span) {
      if (owners.has(b)) continue;
      const lo = b > r.start ? b : r.start;
      const hi = b + span - 1n < r.end ? b + span - 1n : r.end;
      const free = taken.firstFree(lo, hi);
      if (free !== null && !(free === r.gateway && taken.firstFree(free + 1n, hi) === null)) return formatCidr(b, set.family, prefixOf(sizes, set.family));
    }
  }
  return null;
}

/** A plan that claims a block for this node. */
export function planClaim(block: Block): Plan {
  const plan = emptyPlan();
  plan.changes.push({ op: "claim", block });
  plan.claims.push(block);
  return plan;
}

/**
 * Plans that give up the blocks of nodes that are gone (no live announcement) and that hold
 * no address — never one with a live allocation or hold, nor one whose owner may still run —
 * one plan per block, so a block its owner took back meanwhile fails alone.
 */
export function planAbandoned(blocks: Block[], live: Set<string>, self: string, isEmpty: (b: Block) => boolean): { block: Block; plan: Plan }[] {
  return blocks
    .filter((b) => !live.has(b.node) && b.node !== self && isEmpty(b))
    .map((block) => {
      const plan = emptyPlan();
      plan.changes.push({ op: "unclaim", block });
      return { block, plan };
    });
}
