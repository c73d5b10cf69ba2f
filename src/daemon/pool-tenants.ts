/**
 * A named pool's tenants, for `ipamd pools`, the dashboard and the metrics: whom it serves
 * (namespaces, nodes, space), which namespaces hold most of it, and what its rules no longer
 * allow since a reload — allocations that stay until released, and are told, never moved.
 */
import type { Engine } from "../engine/engine.ts";
import type { NamedPool } from "../ipam/named-pool.ts";
import { servesNamespace, servesNode } from "../ipam/pool-scope.ts";
import { NAMESPACE_USE_SHOWN, type PoolReport } from "../protocol-admin.ts";

type TenantFields = Pick<PoolReport, "space" | "namespaces" | "nodes" | "maxPerNamespace" | "namespaceUse" | "namespacesUsing" | "outOfScope">;

const byCount = (use: Map<string, number>) => [...use].map(([namespace, count]) => ({ namespace, count })).sort((a, b) => b.count - a.count || a.namespace.localeCompare(b.namespace));

/**
 * Whose use a report counts: the whole cluster's (an operator's question, asked on demand) or
 * this node's allocations only (the periodic metrics, which on a shared store must not read the
 * cluster at every scrape; Prometheus sums the nodes).
 */
export type UseScope = "cluster" | "node";

/** The most namespaces per pool the metrics name; the rest are summed under `_other`. */
export const NAMESPACE_SERIES = 100;

export async function tenantFields(engine: Engine, pool: NamedPool, of: UseScope): Promise<TenantFields> {
  const { scope } = pool;
  const use = await engine.store.namespaceUse(pool.name, of === "node" ? engine.node : undefined);
  const ranked = byCount(use);
  // This node's own allocations of a pool that no longer serves it: only this node can tell.
  const mine = servesNode(scope, engine.node) ? 0 : [...(await engine.store.namespaceUse(pool.name, engine.node)).values()].reduce((a, b) => a + b, 0);
  return {
    space: scope.space,
    ...(pool.input.namespaces ? { namespaces: pool.input.namespaces } : {}),
    ...(pool.input.nodes ? { nodes: pool.input.nodes } : {}),
    ...(scope.maxPerNamespace !== null ? { maxPerNamespace: scope.maxPerNamespace } : {}),
    namespaceUse: ranked.slice(0, NAMESPACE_USE_SHOWN),
    namespacesUsing: ranked.length,
    outOfScope: {
      namespaces: ranked.filter((u) => !servesNamespace(scope, u.namespace)),
      overLimit: scope.maxPerNamespace === null ? [] : ranked.filter((u) => u.count > scope.maxPerNamespace!),
      thisNode: mine,
    },
  };
}

/** A limited pool's use per namespace as metric series: the largest NAMESPACE_SERIES, the rest as `_other`. */
export async function namespaceSeries(engine: Engine): Promise<{ pool: string; namespace: string; count: number }[]> {
  const series: { pool: string; namespace: string; count: number }[] = [];
  for (const pool of engine.registry.named.values()) {
    if (pool.scope.maxPerNamespace === null) continue;
    const ranked = byCount(await engine.store.namespaceUse(pool.name, engine.node));
    for (const u of ranked.slice(0, NAMESPACE_SERIES)) series.push({ pool: pool.name, ...u });
    const rest = ranked.slice(NAMESPACE_SERIES).reduce((n, u) => n + u.count, 0);
    if (rest > 0) series.push({ pool: pool.name, namespace: "_other", count: rest });
  }
  return series;
}
