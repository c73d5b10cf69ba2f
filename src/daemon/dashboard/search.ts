/**
 * The dashboard's one search box: an address, `namespace/pod`, `namespace/`, or free text
 * (a prefix of an address, container ID, pod name or node, or a namespace), turned into the
 * store's AllocationFilter. The pool, node and network links of the tables add exact filters.
 */
import { canonicalIp } from "../../ipam/address.ts";
import type { AllocationFilter } from "../../store/store.ts";

export const PAGE_SIZE = 50;
/**
 * Numbered pages skip rows the store must still walk: deeper than this a page would hold up
 * pod starts on the same event loop, so the search has to be narrowed instead (the admin API
 * and CLI page by key and have no such limit).
 */
export const MAX_PAGE = 200;
const MAX_TERM = 256;

export interface Search {
  /** The search box's text, as typed (trimmed). */
  q: string;
  pool: string;
  node: string;
  network: string;
  page: number;
  filter: AllocationFilter;
  /** What was searched for, in words; null when nothing was. */
  described: string | null;
  /** The address searched for, when the text is one: its history page is worth a link. */
  ip: string | null;
}

function termFilter(q: string): { filter: AllocationFilter; described: string | null; ip: string | null } {
  if (q === "") return { filter: {}, described: null, ip: null };
  const ip = canonicalIp(q);
  if (ip) return { filter: { ip }, described: `address ${ip}`, ip };
  const slash = q.indexOf("/");
  if (slash > 0 && q.indexOf("/", slash + 1) < 0) {
    const namespace = q.slice(0, slash);
    const name = q.slice(slash + 1);
    if (name === "") return { filter: { podNamespace: namespace }, described: `namespace ${namespace}`, ip: null };
    return { filter: { podNamespace: namespace, podName: name }, described: `pod ${namespace}/${name}`, ip: null };
  }
  return { filter: { search: q }, described: `“${q}”`, ip: null };
}

export function parseSearch(query: Record<string, string | undefined>): Search {
  const q = (query.q ?? "").trim().slice(0, MAX_TERM);
  const pool = (query.pool ?? "").slice(0, MAX_TERM * 4);
  const node = (query.node ?? "").trim().slice(0, MAX_TERM);
  const network = (query.network ?? "").trim().slice(0, MAX_TERM);
  const pageNumber = Number(query.page ?? 1);
  const page = Number.isInteger(pageNumber) && pageNumber >= 1 ? Math.min(pageNumber, MAX_PAGE) : 1;
  const term = termFilter(q);
  const filter: AllocationFilter = {
    ...term.filter,
    ...(pool ? { pool } : {}),
    ...(node ? { node } : {}),
    ...(network ? { network } : {}),
    // One more than a page: whether a next page exists, without counting them all.
    limit: PAGE_SIZE + 1,
    offset: (page - 1) * PAGE_SIZE,
  };
  const parts = [term.described, pool ? `pool ${pool}` : null, node ? `node ${node}` : null, network ? `network ${network}` : null].filter((p) => p !== null);
  return { q, pool, node, network, page, filter, described: parts.length ? parts.join(", ") : null, ip: term.ip };
}
