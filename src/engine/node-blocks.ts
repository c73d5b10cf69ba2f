/**
 * This node's blocks on a shared store (blocks.ts holds the pure rules): where an ADD looks
 * first — the part of a range set inside them, worked out again only when they change — and
 * the claim of a free block when they are full, one claim shared by the ADDs that find them
 * full together instead of each racing the others for the same free block.
 */
import type { RangeSet } from "../ipam/pool.ts";
import { ConflictError, type Store } from "../store/store.ts";
import type { Applier } from "./apply.ts";
import { blockStart, type BlockSizes, freeBlock, OwnViews, planClaim } from "./blocks.ts";
import type { AddressState } from "./state.ts";
import { cursorOf, type Target } from "./target.ts";

export class NodeBlocks {
  private readonly views: OwnViews;
  /** The block claim in flight per range set, shared by the ADDs that wait for it. */
  private readonly claiming = new Map<string, Promise<boolean>>();

  constructor(
    private readonly state: AddressState,
    private readonly store: Store,
    private readonly applier: Applier,
    private readonly sizes: BlockSizes,
    private readonly node: string,
  ) {
    this.views = new OwnViews(sizes);
  }

  /** The part of the target's range set inside this node's blocks (empty: it owns none there yet). */
  scopeOf(t: Target): RangeSet {
    return this.views.of(this.state, t.space, t.rangeSet);
  }

  /** Claims a free block of the target for this node (false: the pool has none left, time to borrow). */
  claim(t: Target): Promise<boolean> {
    const key = cursorOf(t);
    let claim = this.claiming.get(key);
    if (!claim) {
      claim = (async () => {
        for (let attempt = 0; attempt < 8; attempt++) {
          const owners = new Set((await this.store.blocks(t.space)).flatMap((b) => blockStart(b.cidr) ?? []));
          const cidr = freeBlock(owners, t.rangeSet, this.state.takenSet(t.space, t.rangeSet.family), this.sizes, this.node);
          if (cidr === null) return false;
          try {
            await this.applier.apply(planClaim({ space: t.space, cidr, node: this.node }));
            return true;
          } catch (err) {
            if (!(err instanceof ConflictError)) throw err;
            // Another node claimed it between our read and our write: look again.
          }
        }
        return false;
      })().finally(() => this.claiming.delete(key));
      this.claiming.set(key, claim);
    }
    return claim;
  }
}
