/**
 * What the stores keep, as valibot schemas (the types are inferred from them): allocation
 * records, holds, sticky bindings, block claims and history events. The etcd store validates
 * every value it reads back with these (other daemons write them too); the admin API answers
 * with the same shapes. A leaf module: valibot only, so both sides may import it.
 */
import { boolean, type InferOutput, integer, nullable, number, object, optional, picklist, pipe, string } from "valibot";

const family = picklist([4, 6]);
const time = pipe(number(), integer());

export const AllocationRecordSchema = object({
  /**
   * The address space, where the address is unique: the network name for the netconf's
   * inline ranges (as host-local keys its data by network), `@ipv4`/`@ipv6` for named pools
   * (shared by every network that selects one).
   */
  space: string(),
  /** The netconf's network name: with containerID and ifname, the attachment's key. */
  network: string(),
  /** Canonical text of the address (RFC 5952 for IPv6): the key, with the space. */
  ip: string(),
  family,
  prefix: pipe(number(), integer()),
  gateway: nullable(string()),
  /** The named pool it came from; null when it came from the netconf's inline ranges. */
  pool: nullable(string()),
  /** The inline range set it came from (its canonical text); null for a named pool. */
  rangeSet: nullable(string()),
  containerID: string(),
  ifname: string(),
  netns: nullable(string()),
  podNamespace: nullable(string()),
  podName: nullable(string()),
  podUid: nullable(string()),
  node: string(),
  /** Milliseconds since the epoch. */
  createdAt: time,
  /** Requested by the runtime rather than chosen by the allocator. */
  static: boolean(),
});
export type AllocationRecord = InferOutput<typeof AllocationRecordSchema>;

/**
 * An address that is not allocated but not free: resting after release (`cooling`, until
 * `until`), parked for a sticky pod that may come back (`sticky`, for `pod`), or reserved by
 * an operator for something that is not a pod (`reserved`, until unreserved).
 */
export const HoldSchema = object({
  space: string(),
  family,
  ip: string(),
  kind: picklist(["cooling", "sticky", "reserved"]),
  /** cooling: when it may be handed out again. */
  until: nullable(time),
  /** sticky: the pod (its binding's key) it is kept for. */
  pod: nullable(string()),
  /** reserved: the named pool, what it is for and who reserved it. */
  pool: optional(string()),
  note: optional(string()),
  by: optional(string()),
});
export type Hold = InferOutput<typeof HoldSchema>;

/** A sticky pool's binding of an address to a pod (namespace/name). */
export const BindingSchema = object({
  space: string(),
  pod: string(),
  family,
  ip: string(),
  /** null while an attachment of the pod holds the address; else when it was released. */
  releasedAt: nullable(time),
});
export type Binding = InferOutput<typeof BindingSchema>;

/** A node's claim of a block of an address space (shared stores: see the engine's blocks). */
export const BlockSchema = object({ space: string(), cidr: string(), node: string() });
export type Block = InferOutput<typeof BlockSchema>;

export const HistoryEventSchema = object({
  id: time,
  at: time,
  kind: picklist(["allocated", "static", "imported", "released", "reclaimed", "reserved", "unreserved"]),
  network: string(),
  ip: string(),
  containerID: nullable(string()),
  ifname: nullable(string()),
  podNamespace: nullable(string()),
  podName: nullable(string()),
  podUid: nullable(string()),
  cause: nullable(string()),
});
/** One history event: every change of an address is kept for audit (DESIGN rule 7). */
export type HistoryEvent = InferOutput<typeof HistoryEventSchema>;
export type AllocateKind = "allocated" | "static" | "imported";
export type ReleaseKind = "released" | "reclaimed";
/** What a hold's change records in the address's history (reservations only). */
export type HoldEvent = { kind: "reserved" | "unreserved"; cause: string };

/** An attachment within its network: the container and its interface. */
export interface AttachmentKey {
  containerID: string;
  ifname: string;
}

export interface AllocationFilter {
  pool?: string;
  node?: string;
  network?: string;
  podNamespace?: string;
  podName?: string;
  containerID?: string;
  ip?: string;
  /** Free text (the dashboard's search): see matchesSearch. */
  search?: string;
  limit?: number;
  /** Skips this many (the dashboard's numbered pages, which bound it); prefer `after`. */
  offset?: number;
  /** Continues a list after this allocation (address order: space, family, then numerically). */
  after?: { space: string; ip: string };
}

/**
 * What `AllocationFilter.search` matches: a prefix of the address text, the container ID,
 * the pod's name or the node, or the pod's namespace exactly. Backends that filter in memory
 * call this; sqlite asks the same in SQL, as index range scans.
 */
export function matchesSearch(r: AllocationRecord, term: string): boolean {
  return (
    r.ip.startsWith(term) ||
    r.containerID.startsWith(term) ||
    (r.podName !== null && r.podName.startsWith(term)) ||
    r.node.startsWith(term) ||
    r.podNamespace === term
  );
}

/** Whether a record matches every field of a filter: for backends that filter in memory. */
export function matchesFilter(r: AllocationRecord, f: AllocationFilter): boolean {
  return (
    (f.pool === undefined || r.pool === f.pool) &&
    (f.node === undefined || r.node === f.node) &&
    (f.network === undefined || r.network === f.network) &&
    (f.podNamespace === undefined || r.podNamespace === f.podNamespace) &&
    (f.podName === undefined || r.podName === f.podName) &&
    (f.containerID === undefined || r.containerID === f.containerID) &&
    (f.ip === undefined || r.ip === f.ip) &&
    (f.search === undefined || matchesSearch(r, f.search))
  );
}

export interface HistoryFilter {
  ip?: string;
  containerID?: string;
  podNamespace?: string;
  podName?: string;
  kind?: HistoryEvent["kind"];
  limit?: number;
  /** Continues a list (newest first) with the events older than this one. */
  before?: { at: number; id: number };
}

/** Address order within an attachment: IPv4 first, then by the address's text (ASCII, as stored). */
export const byAddress = (a: { family: number; ip: string }, b: { family: number; ip: string }): number =>
  a.family - b.family || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);
