/**
 * Block affinity for a shared (cluster) store, after Calico's IPAM: a pool is cut into
 * blocks (/26 IPv4, /122 IPv6 by default); a node claims a block by compare-and-swap and
 * allocates from its own blocks, so daemons on different nodes rarely contend for one
 * address. When its blocks are full it claims a free block; only when the pool has no free
 * block does it borrow from other nodes' blocks (every write is still a CAS, so borrowing is
 * safe, only slower). Blocks of a node that is gone are given up once empty.
 */
import { bitsOf, type Family, formatCidr, parseCidr } from "../ipam/address.ts";
import type { ExtentSet } from "../ipam/freespace.ts";
import type { Range, RangeSet } from "../ipam/pool.ts";
import type { BlockStore } from "../store/store.ts";

export interface BlockSizes {
  v4: number;
  v6: number;
}

export const DEFAULT_BLOCK_SIZES: BlockSizes = { v4: 26, v6: 122 };

export class BlockAffinity {
  /** This node's blocks per space: block start → its CIDR text. */
  private readonly owned = new Map<string, Map<bigint, string>>();

  constructor(
    private readonly store: BlockStore,
    private readonly node: string,
    private readonly sizes: BlockSizes = DEFAULT_BLOCK_SIZES,
  ) {}

  private prefixOf(family: Family): number {
    return family === 4 ? this.sizes.v4 : this.sizes.v6;
  }

  private span(family: Family): bigint {
    return 1n << BigInt(bitsOf(family) - this.prefixOf(family));
  }

  async load(): Promise<void> {
    for (const { space, block, node } of await this.store.blocks()) {
      if (node !== this.node) continue;
      const cidr = parseCidr(block);
      if (cidr) this.mine(space).set(cidr.address, block);
    }
  }

  private mine(space: string): Map<bigint, string> {
    let m = this.owned.get(space);
    if (!m) this.owned.set(space, (m = new Map()));
    return m;
  }

  ownedBlocks(space: string): string[] {
    return [...(this.owned.get(space)?.values() ?? [])];
  }

  /** The part of a range set inside this node's blocks, as a range set of its own (same key). */
  view(space: string, set: RangeSet): RangeSet | null {
    const blocks = [...(this.owned.get(space)?.keys() ?? [])].sort((a, b) => (a < b ? -1 : 1));
    if (blocks.length === 0) return null;
    const span = this.span(set.family);
    const ranges: Range[] = [];
    for (const r of set.ranges) {
      for (const b of blocks) {
        const lo = b > r.start ? b : r.start;
        const hi = b + span - 1n < r.end ? b + span - 1n : r.end;
        if (lo <= hi) ranges.push({ ...r, start: lo, end: hi });
      }
    }
    if (ranges.length === 0) return null;
    ranges.sort((a, b) => (a.start < b.start ? -1 : 1));
    return { family: set.family, ranges, key: set.key, size: ranges.reduce((n, r) => n + r.end - r.start + 1n, 0n) };
  }

  /**
   * Claims the lowest block of the set that nobody owns and that has a free address in this
   * node's index. Resolves false when the pool has no such block (time to borrow).
   */
  async claimFree(space: string, set: RangeSet, taken: ExtentSet): Promise<boolean> {
    const span = this.span(set.family);
    const prefix = this.prefixOf(set.family);
    for (let attempt = 0; attempt < 8; attempt++) {
      const owners = new Set((await this.store.blocks(space)).map((b) => parseCidr(b.block)!.address));
      let candidate: bigint | null = null;
      search: for (const r of set.ranges) {
        for (let b = r.start - (r.start % span); b <= r.end; b += span) {
          if (owners.has(b)) continue;
          const lo = b > r.start ? b : r.start;
          const hi = b + span - 1n < r.end ? b + span - 1n : r.end;
          const free = taken.firstFree(lo, hi);
          if (free !== null && !(free === r.gateway && taken.firstFree(free + 1n, hi) === null)) {
            candidate = b;
            break search;
          }
        }
      }
      if (candidate === null) return false;
      const text = formatCidr(candidate, set.family, prefix);
      if (await this.store.claimBlock(space, text, this.node)) {
        this.mine(space).set(candidate, text);
        return true;
      }
      // Another node claimed it between our read and our write: look again.
    }
    return false;
  }

  /**
   * Gives up blocks whose owner is gone (no live node key) and that hold no allocation,
   * so a pool does not shrink forever as nodes come and go. Never touches a block with a
   * live allocation, nor one whose owner might still be running.
   */
  async releaseAbandoned(isEmpty: (space: string, block: string) => boolean): Promise<string[]> {
    const alive = new Set(await this.store.liveNodes());
    const released: string[] = [];
    for (const b of await this.store.blocks()) {
      if (alive.has(b.node) || b.node === this.node) continue;
      if (!isEmpty(b.space, b.block)) continue;
      if (await this.store.releaseBlock(b.space, b.block, b.node)) released.push(`${b.space} ${b.block} (node ${b.node})`);
    }
    return released;
  }
}
