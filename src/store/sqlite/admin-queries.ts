/**
 * The admin reads of the embedded store's allocations as SQL, filtered by any field, one
 * bounded page at a time (history's are in history.ts). Pages continue from a key (keyset
 * pagination), never from an offset a query would have to walk: every page costs the same
 * however deep it is.
 */
import type { Family } from "../../ipam/address.ts";
import type { AllocationFilter, AllocationRecord } from "../records.ts";
import { ipOrder } from "./schema.ts";
import { equalities, type Param } from "./where.ts";

export type Row = Record<string, string | number | null>;

/** The least string greater than every string that starts with `prefix` (in UTF-8 order, as sqlite compares). */
function prefixEnd(prefix: string): string {
  const points = Array.from(prefix);
  const last = points.pop()!.codePointAt(0)!;
  if (last >= 0x10ffff) return points.length > 0 ? prefixEnd(points.join("")) : "\u{10ffff}\u{10ffff}";
  const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
  return points.join("") + String.fromCodePoint(next);
}

/** AllocationFilter.search (see matchesSearch) as prefix range scans, each one an index's. */
const SEARCH = `(ip >= ? AND ip < ?) OR (container_id >= ? AND container_id < ?) OR (pod_name >= ? AND pod_name < ?)
  OR (node >= ? AND node < ?) OR pod_namespace = ?`;

export function toRecord(row: Row): AllocationRecord {
  return {
    space: row.space as string,
    network: row.network as string,
    ip: row.ip as string,
    family: row.family as Family,
    prefix: row.prefix as number,
    gateway: row.gateway as string | null,
    // '' in the column: the address came from inline ranges, not a named pool.
    pool: (row.pool as string) || null,
    rangeSet: (row.range_set as string | null) ?? null,
    containerID: row.container_id as string,
    ifname: row.ifname as string,
    netns: row.netns as string | null,
    podNamespace: row.pod_namespace as string | null,
    podName: row.pod_name as string | null,
    podUid: row.pod_uid as string | null,
    node: row.node as string,
    createdAt: row.created_at as number,
    static: row.static === 1,
  };
}

/** SELECT of allocations matching every given field, in address order, from `after` on. */
export function allocationsQuery(filter: AllocationFilter): { sql: string; params: Param[] } {
  const columns: [keyof AllocationFilter, string][] = [
    ["pool", "pool"],
    ["node", "node"],
    ["network", "network"],
    ["podNamespace", "pod_namespace"],
    ["podName", "pod_name"],
    ["containerID", "container_id"],
    ["ip", "ip"],
  ];
  const { conditions, params } = equalities(columns, filter);
  if (filter.search) {
    conditions.push(`(${SEARCH})`);
    const range = [filter.search, prefixEnd(filter.search)];
    params.push(...range, ...range, ...range, ...range, filter.search);
  }
  if (filter.after) {
    conditions.push("(space, ip_order) > (?, ?)");
    params.push(filter.after.space, ipOrder(filter.after.ip));
  }
  const sql = `SELECT * FROM allocations ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}
    ORDER BY space, ip_order LIMIT ? OFFSET ?`;
  params.push(filter.limit ?? 1000, filter.offset ?? 0);
  return { sql, params };
}
