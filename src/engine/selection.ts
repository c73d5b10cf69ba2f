/**
 * Which pools an ADD may take from, and in what order: the tenant rules. The netconf's inline
 * ranges come first, each its own slot; then the pools the netconf names, or — when it names
 * neither ranges nor pools — the pools scoped to the pod's namespace followed by the daemon's
 * `defaultPools`. A slot yields one address: from the first of its candidates this pod may use
 * (namespace, node) that has a free address and room under its namespace limit. Pure.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import type { Family } from "../ipam/address.ts";
import type { NamedPool } from "../ipam/named-pool.ts";
import { groupsOf, type PoolChoice } from "../ipam/pool-choice.ts";
import { servesNamespace, servesNode } from "../ipam/pool-scope.ts";

/** What an ADD asks for: a slot per element, each a list of pools to try in order. */
export interface Selection {
  /** Pool names per slot, in the order they are tried, all usable by this pod on this node. */
  slots: string[][];
}

interface Asked {
  pools?: readonly PoolChoice[];
  namespace?: string;
  /** Whether the netconf gave inline ranges (then no default applies). */
  hasRanges: boolean;
}

const describe = (pool: NamedPool): string => {
  const parts = [pool.scope.namespaces ? `namespaces ${[...pool.scope.namespaces].join(", ")}` : null, pool.scope.nodes ? `nodes ${pool.input.nodes!.join(", ")}` : null];
  return parts.filter(Boolean).join("; ");
};

/** Why a pod may not use a pool, or null when it may. */
function refusal(pool: NamedPool, namespace: string | undefined, node: string): string | null {
  if (!servesNode(pool.scope, node)) return `pool ${pool.name} does not serve node ${node} (${describe(pool)})`;
  if (servesNamespace(pool.scope, namespace)) return null;
  if (namespace === undefined) return `pool ${pool.name} serves only ${describe(pool)}, and this pod's runtime gave no K8S_POD_NAMESPACE`;
  return `pool ${pool.name} does not serve namespace ${namespace} (${describe(pool)})`;
}

/** A group's pools this pod may use; none at all is refused (unless `orNone`), naming each pool's reason. */
function usable(group: string[], pools: ReadonlyMap<string, NamedPool>, namespace: string | undefined, node: string, orNone = false): string[] {
  const reasons: string[] = [];
  const ok: string[] = [];
  for (const name of group) {
    const pool = pools.get(name);
    if (!pool) throw new IpamError(ErrorCode.InvalidNetworkConfig, `unknown pool "${name}": the daemon's config defines ${[...pools.keys()].join(", ") || "no pools"}`);
    const why = refusal(pool, namespace, node);
    if (why === null) ok.push(name);
    else reasons.push(why);
  }
  if (ok.length === 0 && !orNone) throw new IpamError(ErrorCode.PoolNotAllowed, reasons.join("; "));
  return ok;
}

/** Pools scoped to the namespace (config order), by family: a pod's own pools come first. */
function namespacePools(pools: ReadonlyMap<string, NamedPool>, namespace: string | undefined, node: string): Map<Family, string[]> {
  const byFamily = new Map<Family, string[]>();
  if (namespace === undefined) return byFamily;
  for (const pool of pools.values()) {
    if (pool.scope.namespaces?.has(namespace) && servesNode(pool.scope, node)) byFamily.set(pool.family, [...(byFamily.get(pool.family) ?? []), pool.name]);
  }
  return byFamily;
}

/**
 * The default slots: each default group with the namespace's pools of its family in front
 * (the first group of a family only), then a slot per family the namespace has pools of and
 * the defaults do not.
 */
function defaultSlots(pools: ReadonlyMap<string, NamedPool>, defaults: string[][], namespace: string | undefined, node: string): string[][] {
  const own = namespacePools(pools, namespace, node);
  const slots: string[][] = [];
  for (const group of defaults) {
    const family = pools.get(group[0]!)!.family;
    const first = own.get(family) ?? [];
    own.delete(family);
    // A default group none of whose pools serves this pod is refused, not left out: the pod
    // would silently get one address fewer (single-stack) than the defaults promise.
    slots.push([...new Set([...first, ...usable(group.filter((name) => !first.includes(name)), pools, namespace, node, first.length > 0)])]);
  }
  for (const names of own.values()) slots.push(names);
  return slots;
}

export function select(pools: ReadonlyMap<string, NamedPool>, defaults: string[][], node: string, asked: Asked): Selection {
  if (asked.pools && asked.pools.length > 0) return { slots: groupsOf(asked.pools).map((group) => usable(group, pools, asked.namespace, node)) };
  if (asked.hasRanges) return { slots: [] };
  const slots = defaultSlots(pools, defaults, asked.namespace, node);
  if (slots.length > 0) return { slots };
  throw new IpamError(ErrorCode.InvalidNetworkConfig, "no IP ranges specified: set ipam.ranges (or ipam.subnet) or ipam.pool in the netconf, or defaultPools in the daemon's config");
}
