/**
 * Block affinity for a shared store, after Calico's IPAM: a pool is cut into blocks (/26 IPv4,
 * /122 IPv6 by default); a node claims a block (a store operation: no two nodes can hold one)
 * and allocates from its own blocks, so daemons on different nodes rarely contend for one
 * address. When its blocks are full it claims a free block; only when the pool has no free
 * block does it borrow from other nodes' blocks (every write is still a compare-and-swap, so
 * borrowing is safe, only slower). Blocks of a node that is gone are given up once empty.
 * The functions here are pure; the engine reads the owners and applies the claims.
 */
import { bitsOf, type Family, formatCidr, parseCidr } from "../ipam/address.ts";
import type { TakenAddresses } from "../ipam/freespace.ts";
import type { Range, RangeSet } from "../ipam/pool.ts";
import type { Block } from "../store/store.ts";
import { emptyPlan, type Plan } from "./plan.ts";

export interface BlockSizes {
  v4: number;
  v6: number;
}

export const DEFAULT_BLOCK_SIZES: BlockSizes = { v4: 26, v6: 122 };

/** A block's first address. */
export const blockStart = (cidr: string): bigint | null => parseCidr(cidr)?.address ?? null;

const prefixOf = (sizes: BlockSizes, family: Family): number => (family === 4 ? sizes.v4 : sizes.v6);
const spanOf = (sizes: BlockSizes, family: Family): bigint => 1n << BigInt(bitsOf(family) - prefixOf(sizes, family));

/** The part of range `r` inside the block that starts at `b`: its first and last address (lo > hi: none). */
function partIn(b: bigint, span: bigint, r: Range): [lo: bigint, hi: bigint] {
  return [b > r.start ? b : r.start, b + span - 1n < r.end ? b + span - 1n : r.end];
}

/** The part of a range set inside this node's blocks, as a range set of its own (same key; empty: none). */
export function ownView(owned: ReadonlyMap<bigint, string>, set: RangeSet, sizes: BlockSizes): RangeSet {
  const blocks = [...owned.keys()].sort((a, b) => (a < b ? -1 : 1));
  const span = spanOf(sizes, set.family);
  const ranges: Range[] = [];
  for (const r of set.ranges) {
    for (const b of blocks) {
      const [lo, hi] = partIn(b, span, r);
      if (lo <= hi) ranges.push({ ...r, start: lo, end: hi });
    }
  }
  ranges.sort((a, b) => (a.start < b.start ? -1 : 1));
  return { family: set.family, ranges, key: set.key, size: ranges.reduce((n, r) => n + r.end - r.start + 1n, 0n) };
}

/**
 * ownView remembered per range set until this node's blocks change: working it out walks
 * every block the node owns (thousands on a big node), which an ADD must not do each time.
 */
export class OwnViews {
  private readonly known = new WeakMap<RangeSet, { space: string; epoch: number; view: RangeSet }>();

  constructor(private readonly sizes: BlockSizes) {}

  of(state: { ownedBlocks(space: string): ReadonlyMap<bigint, string>; readonly blocksEpoch: number }, space: string, set: RangeSet): RangeSet {
    const known = this.known.get(set);
    if (known && known.space === space && known.epoch === state.blocksEpoch) return known.view;
    const view = ownView(state.ownedBlocks(space), set, this.sizes);
    this.known.set(set, { space, epoch: state.blocksEpoch, view });
    return view;
  }
}

/** Where a node's search for a free block starts: its own place in the pool's blocks, the same on every call. */
export function searchStart(node: string, blocks: bigint): bigint {
  let hash = 2166136261; // FNV-1a
  for (let i = 0; i < node.length; i++) hash = Math.imul(hash ^ node.charCodeAt(i), 16777619) >>> 0;
  return blocks > 0n ? BigInt(hash) % blocks : 0n;
}

/**
 * A block of the set that nobody owns and that has a free address (null: time to borrow),
 * searched in the set's order from the node's own starting place (searchStart), wrapping
 * around. Nodes that all started at the lowest block raced each other for the same one every
 * time their blocks filled, and a node that lost eight races in a row went borrowing from
 * other nodes' blocks, where it raced again. Calico seeds its block order with the host name
 * for the same reason.
 */
export function freeBlock(owners: Set<bigint>, set: RangeSet, taken: TakenAddresses, sizes: BlockSizes, node: string): string | null {
  const span = spanOf(sizes, set.family);
  const blockOf = (ip: bigint) => ip - (ip % span);
  const grid = set.ranges.map((r) => ({ r, first: blockOf(r.start), count: (blockOf(r.end) - blockOf(r.start)) / span + 1n }));
  const total = grid.reduce((n, g) => n + g.count, 0n);
  const start = searchStart(node, total);
  for (const [from, to] of [[start, total], [0n, start]] as const) {
    let index = 0n;
    for (const { r, first, count } of grid) {
      // This range's blocks with an index in [from, to).
      const lo = from > index ? from - index : 0n;
      const hi = to - index < count ? to - index : count;
      for (let i = lo; i < hi; i++) {
        const b = first + i * span;
        if (owners.has(b)) continue;
        const [low, high] = partIn(b, span, r);
        const free = taken.firstFree(low, high);
        if (free !== null && !(free === r.gateway && taken.firstFree(free + 1n, high) === null)) return formatCidr(b, set.family, prefixOf(sizes, set.family));
      }
      index += count;
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
