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

export async function tenantFields(engine: Engine, pool: NamedPool): Promise<TenantFields> {
  const { scope } = pool;
  const use = await engine.store.namespaceUse(pool.name);
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
