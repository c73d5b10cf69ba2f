/**
 * `ipamd pools`: named pools with their figures (sizes a person can read), then whom each
 * serves and which namespaces fill it, then the netconfs' inline range sets.
 */
import type { PoolReport, PoolsResponse } from "../protocol-admin.ts";
import { readableCount } from "../readable.ts";
import { formatTable } from "./table.ts";

const percent = (u: number) => `${u.toFixed(1)}%`;

const scoped = (p: PoolReport) => p.space !== "default" || p.namespaces || p.nodes || p.maxPerNamespace !== undefined || p.namespacesUsing > 0;

/** What a reload left that the pool's rules no longer allow, in a few words. */
function outOfScope(p: PoolReport): string | null {
  const o = p.outOfScope;
  const parts = [
    ...o.namespaces.map((u) => `${u.namespace} ${u.count} (not served)`),
    ...o.overLimit.map((u) => `${u.namespace} ${u.count} (over limit)`),
    ...(o.thisNode ? [`${o.thisNode} on this node (not served)`] : []),
  ];
  return parts.length ? parts.join(", ") : null;
}

export function poolsView(reports: PoolsResponse): string {
  let text = formatTable(
    ["POOL", "KIND", "SPACE", "SIZE", "USED", "FREE", "USE%", "HELD", "RESERVED", "NODE SUBNET", "ORPHANS"],
    reports.pools.map((p) => [p.name, p.kind, p.space, readableCount(p.size), p.used, readableCount(p.free), percent(p.utilization), p.cooling + p.stickyParked || null, p.reserved || null, p.nodeSubnet, p.orphans.count || null]),
  );
  const tenants = reports.pools.filter(scoped);
  if (tenants.length > 0) {
    text += `\nTenants:\n${formatTable(
      ["POOL", "NAMESPACES", "NODES", "LIMIT", "TOP NAMESPACES", "OUT OF SCOPE"],
      tenants.map((p) => [
        p.name,
        p.namespaces?.join(",") ?? "all",
        p.nodes?.join(",") ?? "all",
        p.maxPerNamespace,
        `${p.namespaceUse.map((u) => `${u.namespace} ${u.count}`).join(", ")}${p.namespacesUsing > p.namespaceUse.length ? `, +${p.namespacesUsing - p.namespaceUse.length} more` : ""}`,
        outOfScope(p),
      ]),
    )}`;
  }
  if (reports.rangeSets.length > 0) {
    text += `\nInline range sets (netconf ranges):\n${formatTable(["NETWORK", "RANGE SET", "SIZE", "USED", "FREE", "USE%"], reports.rangeSets.map((r) => [r.network, r.rangeSet, readableCount(r.size), r.used, readableCount(r.free), percent(r.utilization)]))}`;
  }
  return text;
}
