/**
 * Which range sets an ADD allocates from. The netconf's inline `ranges` are range sets in the
 * network's own address space; named pools come from the daemon's config, all of a family in
 * one shared space. Supernet pools resolve to this node's claimed subnet. Reloading swaps the
 * whole map at once, so a request sees either the old or the new config.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, formatCidr, parseCidr } from "../ipam/address.ts";
import { footprint, type NamedPool, nodeRangeSet, type PoolPolicy } from "../ipam/named-pool.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import { DEFAULT_SPACE } from "../ipam/pool-scope.ts";
import { select } from "./selection.ts";
import { nextFreeSubnet, subnetFits } from "../ipam/node-subnet.ts";
import { parseRangeSets, type RangeSet } from "../ipam/pool.ts";
import type { AddRequest } from "./requests.ts";
import type { Store } from "../store/store.ts";
import type { Target } from "./target.ts";

/** Inline range sets kept for `ipamd pools` and the metrics (the most recently used). */
const MAX_INLINE_REPORTED = 256;

export const DEFAULT_POLICY: PoolPolicy = { releaseCooldownMs: 0, sticky: false, stickyTtlMs: null };

/**
 * Named pools of one family and one space share one address space. Pools of a space never
 * overlap (compilePools refuses it), so sharing costs nothing, and it keeps an address unique
 * across pools even when a reload renames, splits or merges them: the addresses already handed
 * out stay taken whatever the pool is now called. The default space keeps its first name.
 */
export const namedSpace = (family: Family, space: string = DEFAULT_SPACE): string => (space === DEFAULT_SPACE ? `@ipv${family}` : `@${space}:ipv${family}`);

/** A store space as operators name it: a named pool's space, or `network NAME` for inline ranges. */
export function spaceName(space: string): string {
  const named = /^@(?:(.+):)?ipv[46]$/.exec(space);
  if (!named) return `network ${space}`;
  return named[1] ?? DEFAULT_SPACE;
}

/** Whether a store space is the named space `name` (of either family). */
export const isNamedSpace = (space: string, name: string): boolean => space === namedSpace(4, name) || space === namedSpace(6, name);

/** The store's space of a named pool. */
export const spaceOf = (pool: NamedPool): string => namedSpace(pool.family, pool.scope.space);

/** An ADD's targets, and its slots: per slot, the indexes of its candidate targets in order. */
export interface AddTargets {
  targets: Target[];
  slots: number[][];
}

export class PoolRegistry {
  private pools = new Map<string, NamedPool>();
  private defaults: string[][] = [];
  /** This node's subnet of each supernet pool, as a range set. */
  private nodeSets = new Map<string, RangeSet>();
  /** Inline range sets seen since start, for reports, by network and range set. */
  readonly inline = new Map<string, { network: string; target: Target }>();

  constructor(private readonly node: string) {}

  get named(): ReadonlyMap<string, NamedPool> {
    return this.pools;
  }

  get defaultPools(): readonly string[][] {
    return this.defaults;
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
  async configure({ pools, defaults }: PoolSetup, store: Store): Promise<void> {
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
    this.defaults = defaults;
    this.nodeSets = nodeSets;
  }

  /** The reuse policy of the pool an allocation came from (as configured now). */
  policyOf(record: { pool: string | null }): PoolPolicy {
    return record.pool === null ? DEFAULT_POLICY : (this.pools.get(record.pool)?.policy ?? DEFAULT_POLICY);
  }

  /** Inline range sets already parsed, by their JSON (one entry per network's netconf, in practice). */
  private readonly parsedRanges = new Map<string, RangeSet[]>();

  /**
   * A netconf's range sets, parsed once: run cold, between pod starts, parsing and checking
   * them costs a pod start more than looking them up. Bounded like `inline`.
   */
  private rangeSetsOf(input: AddRequest["ranges"]): RangeSet[] {
    if (!input) return [];
    const key = JSON.stringify(input);
    let sets = this.parsedRanges.get(key);
    if (!sets) {
      sets = parseRangeSets(input);
      if (this.parsedRanges.size >= MAX_INLINE_REPORTED) this.parsedRanges.delete(this.parsedRanges.keys().next().value!);
      this.parsedRanges.set(key, sets);
    }
    return sets;
  }

  targetsFor(req: AddRequest): AddTargets {
    const targets: Target[] = [];
    const slots: number[][] = [];
    for (const rangeSet of this.rangeSetsOf(req.ranges)) {
      this.refuseOverlapWithNamed(rangeSet);
      const target: Target = { space: req.network, pool: null, rangeSet, policy: DEFAULT_POLICY, maxPerNamespace: null };
      // Remembered for reports, newest last; bounded, since every distinct netconf adds one.
      const key = `${req.network}\0${rangeSet.key}`;
      this.inline.delete(key);
      this.inline.set(key, { network: req.network, target });
      if (this.inline.size > MAX_INLINE_REPORTED) this.inline.delete(this.inline.keys().next().value!);
      slots.push([targets.push(target) - 1]);
    }
    const selection = select(this.pools, this.defaults, this.node, { pools: req.pools, namespace: req.pod?.namespace || undefined, hasRanges: targets.length > 0 });
    for (const names of selection.slots) {
      const usable = names.map((name) => this.pools.get(name)!).filter((pool) => this.rangeSetOf(pool));
      // A supernet pool with no subnet left for this node is full here: the next one is tried.
      if (usable.length === 0) {
        const pool = this.pools.get(names[0]!)!;
        throw new IpamError(ErrorCode.PoolExhausted, `pool ${names.join(", ")}: supernet ${pool.input.supernet} has no free /${pool.nodeSubnet!.prefix} left for node ${this.node}`);
      }
      slots.push(usable.map((pool) => targets.push(this.targetOf(pool)) - 1));
    }
    return { targets, slots };
  }

  private targetOf(pool: NamedPool): Target {
    return { space: spaceOf(pool), pool: pool.name, rangeSet: this.rangeSetOf(pool)!, policy: pool.policy, maxPerNamespace: pool.scope.maxPerNamespace };
  }
}
