/**
 * Pools as Kubernetes objects (the Cluster API in-cluster provider's InClusterIPPool and
 * GlobalInClusterIPPool, plus ipamd's fields) turned into the daemon's named pools. One name
 * space for both: a GlobalInClusterIPPool is its name, an InClusterIPPool is
 * NAMESPACE.NAME and serves its own namespace, nothing more. A pool an
 * object cannot make is told, with why, and left out; the others stand.
 */
import { safeParse } from "valibot";
import { firstIssue } from "../errors.ts";
import { compileNamedPool, type NamedPool, type NamedPoolInput, NamedPoolSchema } from "../ipam/named-pool.ts";
import type { GlobalInClusterIPPool, InClusterIPPool } from "../kube/schemas/pools.ts";
import type { LabelSelector } from "../kube/schemas/meta.ts";

export type PoolObject = { kind: "InClusterIPPool"; object: InClusterIPPool } | { kind: "GlobalInClusterIPPool"; object: GlobalInClusterIPPool };

/** A pool's name in ipamd (netconfs, metrics, the CLI) for an object's kind, namespace and name. */
export const poolNameOf = (kind: PoolObject["kind"], namespace: string | null | undefined, name: string): string =>
  kind === "InClusterIPPool" ? `${namespace}.${name}` : name;

export interface ObjectPool {
  pool: NamedPool;
  /** Namespaces chosen by label: resolved against the cluster's Namespaces (see pool-source.ts). */
  selector: LabelSelector | null;
  /** The object's own namespace (InClusterIPPool), always served. */
  home: string | null;
}

/**
 * What a namespaced pool may not say: whom else it serves, and in which space its addresses
 * are unique. Anyone who may create pools in their own namespace could otherwise put theirs
 * ahead of every other namespace's pools, or overlap another space's addresses. Those are
 * cluster-wide decisions: a GlobalInClusterIPPool's.
 */
const CLUSTER_WIDE_FIELDS = ["namespaces", "namespaceSelector", "space"] as const;

/** The definition an object stands for, in the config file's terms (NamedPoolSchema). */
function inputOf({ kind, object }: PoolObject): NamedPoolInput {
  const s = object.spec;
  const home = kind === "InClusterIPPool" ? object.metadata.namespace! : null;
  if (home) {
    const said = CLUSTER_WIDE_FIELDS.filter((f) => s[f] !== undefined && s[f] !== null);
    if (said.length > 0) throw new Error(`an InClusterIPPool serves its own namespace only and may not set ${said.join(", ")}: use a GlobalInClusterIPPool`);
  }
  const namespaces = [...new Set([...(home ? [home] : []), ...(s.namespaces ?? [])])];
  const cooldown = s.releaseCooldown ?? s.addressReuseGracePeriodSeconds ?? undefined;
  const candidate = {
    addresses: s.addresses,
    prefix: s.prefix,
    ...(s.gateway ? { gateway: s.gateway } : {}),
    ...(s.excludedAddresses ? { excludedAddresses: s.excludedAddresses } : {}),
    ...(s.allocateReservedIPAddresses ? { allocateReservedIPAddresses: true } : {}),
    ...(cooldown !== undefined ? { releaseCooldown: cooldown } : {}),
    ...(s.sticky ? { sticky: s.sticky } : {}),
    ...(s.stickyTTL ? { stickyTTL: s.stickyTTL } : {}),
    ...(namespaces.length > 0 ? { namespaces } : {}),
    ...(s.nodes ? { nodes: s.nodes } : {}),
    ...(s.space ? { space: s.space } : {}),
    ...(s.maxPerNamespace ? { maxPerNamespace: s.maxPerNamespace } : {}),
  };
  const parsed = safeParse(NamedPoolSchema, candidate);
  if (!parsed.success) throw new Error(firstIssue(parsed.issues));
  return parsed.output;
}

/** The pool an object makes, or why it makes none. */
export function poolOfObject(o: PoolObject): ObjectPool | { error: string } {
  const name = poolNameOf(o.kind, o.object.metadata.namespace, o.object.metadata.name!);
  try {
    const pool = compileNamedPool(name, inputOf(o));
    return { pool, selector: o.object.spec.namespaceSelector ?? null, home: o.kind === "InClusterIPPool" ? o.object.metadata.namespace! : null };
  } catch (err) {
    return { error: `${o.kind} ${o.object.metadata.namespace ? `${o.object.metadata.namespace}/` : ""}${o.object.metadata.name}: ${(err as Error).message}` };
  }
}

/** The pool with its selector resolved: the namespaces it names, its home, and those the selector matches. */
export function withSelected(p: ObjectPool, selected: string[]): NamedPool {
  if (!p.selector) return p.pool;
  const namespaces = [...new Set([...(p.pool.input.namespaces ?? []), ...selected])].sort();
  // A selector that matches no namespace serves none (an empty set), not every one.
  return { ...p.pool, input: { ...p.pool.input, namespaces }, scope: { ...p.pool.scope, namespaces: new Set(namespaces) } };
}
