/**
 * The admin reads of the embedded store as SQL: allocations and history filtered by any field,
 * one bounded page at a time. Pages continue from a key (keyset pagination), never from an
 * offset a query would have to walk: every page costs the same however deep it is.
 */
import type { Family } from "../../ipam/address.ts";
import type { AllocationFilter, AllocationRecord, HistoryFilter } from "../records.ts";
import { ipOrder } from "./schema.ts";

export type Row = Record<string, string | number | null>;
type Param = string | number | Uint8Array | null;

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

/** `column = ?` for every filter field that is set, with its value: the WHERE of the admin queries. */
function equalities<F extends object>(columns: [keyof F, string][], filter: F): { conditions: string[]; params: Param[] } {
  const set = columns.filter(([key]) => filter[key] !== undefined);
  return { conditions: set.map(([, column]) => `${column} = ?`), params: set.map(([key]) => filter[key] as string) };
}

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

/** SELECT of history events matching every given field, newest first, older than `before`. */
export function historyQuery(filter: HistoryFilter): { sql: string; params: Param[] } {
  const columns: [keyof HistoryFilter, string][] = [
    ["ip", "ip"],
    ["containerID", "container_id"],
    ["podNamespace", "pod_namespace"],
    ["podName", "pod_name"],
    ["kind", "kind"],
  ];
  const { conditions, params } = equalities(columns, filter);
  if (filter.before) {
    conditions.push("(at, id) < (?, ?)");
    params.push(filter.before.at, filter.before.id);
  }
  const sql = `SELECT id, at, kind, network, ip, container_id AS containerID, ifname, pod_namespace AS podNamespace,
    pod_name AS podName, pod_uid AS podUid, cause FROM events
    ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""} ORDER BY at DESC, id DESC LIMIT ?`;
  params.push(filter.limit ?? 100);
  return { sql, params };
}
