/**
 * Which range sets an ADD allocates from. The netconf's inline `ranges` are range sets in the
 * network's own address space; named pools come from the daemon's config, all of a family in
 * one shared space. Supernet pools resolve to this node's claimed subnet. Reloading swaps the
 * whole map at once, so a request sees either the old or the new config.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, formatCidr, parseCidr } from "../ipam/address.ts";
import { footprint, type NamedPool, nodeRangeSet, type PoolPolicy } from "../ipam/named-pool.ts";
import { nextFreeSubnet, subnetFits } from "../ipam/node-subnet.ts";
import { parseRangeSets, type RangeSet } from "../ipam/pool.ts";
import type { AddRequest } from "./requests.ts";
import type { Store } from "../store/store.ts";
import type { Target } from "./target.ts";

/** Inline range sets kept for `ipamd pools` and the metrics (the most recently used). */
const MAX_INLINE_REPORTED = 256;

export const DEFAULT_POLICY: PoolPolicy = { releaseCooldownMs: 0, sticky: false, stickyTtlMs: null };

/**
 * Named pools of one family share one address space. Pools never overlap (compilePools
 * refuses it), so sharing costs nothing, and it keeps an address unique across pools even
 * when a reload renames, splits or merges them: the addresses already handed out stay
 * taken whatever the pool is now called.
 */
export const namedSpace = (family: Family): string => `@ipv${family}`;

export class PoolRegistry {
  private pools = new Map<string, NamedPool>();
  /** This node's subnet of each supernet pool, as a range set. */
  private nodeSets = new Map<string, RangeSet>();
  /** Inline range sets seen since start, for reports, by network and range set. */
  readonly inline = new Map<string, { network: string; target: Target }>();

  constructor(private readonly node: string) {}

  get named(): ReadonlyMap<string, NamedPool> {
    return this.pools;
  }

  /** A named pool's range set: its own, or this node's subnet of it (undefined: none claimed). */
  rangeSetOf(pool: NamedPool): RangeSet | undefined {
    return pool.rangeSet ?? this.nodeSets.get(pool.name);
  }

  /**
   * Inline ranges are keyed by network, named pools by family: an inline range over a named
   * pool's addresses could hand one out twice, so it is refused.
   */
  private refuseOverlapWithNamed(set: RangeSet): void {
    for (const pool of this.pools.values()) {
      if (pool.family !== set.family) continue;
      for (const [lo, hi] of footprint(pool)) {
        if (set.ranges.some((r) => r.start <= hi && lo <= r.end)) {
          throw new IpamError(ErrorCode.InvalidNetworkConfig, `ranges ${set.key} overlap the daemon's pool ${pool.name}: select it with "pool": "${pool.name}" instead`);
        }
      }
    }
  }

  /** Installs a new set of pools, claiming this node's subnet of each supernet pool first. */
  async configure(pools: Map<string, NamedPool>, store: Store): Promise<void> {
    const nodeSets = new Map<string, RangeSet>();
    for (const pool of pools.values()) {
      const spec = pool.nodeSubnet;
      if (!spec) continue;
      const claimed = await store.claimNodeSubnet(pool.name, this.node, (others, mine) => {
        const current = mine === null ? null : parseCidr(mine);
        if (current && subnetFits(spec, current)) return mine;
        const next = nextFreeSubnet(spec, others.map((s) => parseCidr(s)!.address));
        return next === null ? null : formatCidr(next, pool.family, spec.prefix);
      });
      if (claimed !== null) nodeSets.set(pool.name, nodeRangeSet(pool, parseCidr(claimed)!.address));
    }
    this.pools = pools;
    this.nodeSets = nodeSets;
  }

  /** The reuse policy of the pool an allocation came from (as configured now). */
  policyOf(record: { pool: string | null }): PoolPolicy {
    return record.pool === null ? DEFAULT_POLICY : (this.pools.get(record.pool)?.policy ?? DEFAULT_POLICY);
  }

  targetsFor(req: AddRequest): Target[] {
    const targets: Target[] = [];
    for (const rangeSet of parseRangeSets(req.ranges ?? [])) {
      this.refuseOverlapWithNamed(rangeSet);
      const target: Target = { space: req.network, pool: null, rangeSet, policy: DEFAULT_POLICY };
      // Remembered for reports, newest last; bounded, since every distinct netconf adds one.
      const key = `${req.network}\0${rangeSet.key}`;
      this.inline.delete(key);
      this.inline.set(key, { network: req.network, target });
      if (this.inline.size > MAX_INLINE_REPORTED) this.inline.delete(this.inline.keys().next().value!);
      targets.push(target);
    }
    for (const name of req.pools ?? []) {
      const pool = this.pools.get(name);
      if (!pool) throw new IpamError(ErrorCode.InvalidNetworkConfig, `unknown pool "${name}": the daemon's config defines ${[...this.pools.keys()].join(", ") || "no pools"}`);
      const rangeSet = this.rangeSetOf(pool);
      if (!rangeSet) throw new IpamError(ErrorCode.PoolExhausted, `pool ${name}: supernet ${pool.input.supernet} has no free /${pool.nodeSubnet!.prefix} left for node ${this.node}`);
      targets.push({ space: namedSpace(pool.family), pool: name, rangeSet, policy: pool.policy });
    }
    if (targets.length === 0) throw new IpamError(ErrorCode.InvalidNetworkConfig, "no IP ranges specified: set ipam.ranges, ipam.subnet or ipam.pool");
    return targets;
  }
}
