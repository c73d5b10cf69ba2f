/**
 * What a storage backend must promise (DESIGN rule 3). The daemon keeps the free-space index
 * in memory and decides every address; a backend only has to persist changes atomically and
 * durably, answer lookups by attachment, replay what is held at start-up, and claim node
 * subnets atomically. That is as wide as the weakest backend can honour atomically;
 * test/store/contract.ts holds every backend to it.
 */
import type { Family } from "../ipam/address.ts";
import type { AttachmentKey } from "../protocol.ts";

export interface AllocationRecord {
  /**
   * The uniqueness domain of the address: the network name for host-local style inline
   * ranges (as host-local keys its data by network), `@pool` for a named pool shared by
   * every network that selects it.
   */
  space: string;
  /** The netconf's network name: with containerID and ifname, the attachment's key. */
  network: string;
  /** Canonical text of the address (RFC 5952 for IPv6): the key, with the space. */
  ip: string;
  family: Family;
  prefix: number;
  gateway: string | null;
  /** The named pool, or the canonical key of the inline range set it came from. */
  pool: string;
  containerID: string;
  ifname: string;
  netns: string | null;
  podNamespace: string | null;
  podName: string | null;
  podUid: string | null;
  node: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Requested by the runtime rather than chosen by the allocator. */
  static: boolean;
}

/** An address resting after release (releaseCooldown) before it may be handed out again. */
export interface Cooling {
  space: string;
  family: Family;
  ip: string;
  until: number;
}

/** A sticky pool's binding of an address to a pod (namespace/name). */
export interface Binding {
  space: string;
  pod: string;
  family: Family;
  ip: string;
  /** null while an attachment of the pod holds the address; else when it was released. */
  releasedAt: number | null;
}

export type AllocateKind = "allocated" | "static" | "imported";
export type ReleaseKind = "released" | "reclaimed";

export type Change =
  /**
   * kind defaults to "static" or "allocated" after record.static. replacesHold: the address
   * was held for this pod by a sticky binding (a shared store keeps such holds as the
   * address's key, so taking it back is a swap, not a create).
   */
  | { op: "allocate"; record: AllocationRecord; kind?: AllocateKind; cause?: string; replacesHold?: boolean }
  /** record: what was released, for stores that write the event without reading it back. */
  | { op: "release"; space: string; ip: string; cause: string; kind?: ReleaseKind; record?: AllocationRecord }
  /** The last address handed out from a range set, so the next ADD continues after it. */
  | { op: "cursor"; pool: string; ip: string }
  | { op: "cool"; cooling: Cooling }
  | { op: "uncool"; space: string; ip: string }
  | { op: "bind"; binding: Binding }
  /** heldIp: the binding was parked, holding this address, which the unbind frees. */
  | { op: "unbind"; space: string; pod: string; heldIp?: string };

/** One history event: every change of an address is kept for audit (DESIGN rule 7). */
export interface HistoryEvent {
  id: number;
  at: number;
  kind: AllocateKind | ReleaseKind;
  network: string;
  ip: string;
  containerID: string | null;
  ifname: string | null;
  podNamespace: string | null;
  podName: string | null;
  podUid: string | null;
  cause: string | null;
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

/** Picks this node's subnet: keeps `mine` when still right, or returns a free one (null: none left). */
export type SubnetChooser = (claimedByOthers: string[], mine: string | null) => string | null;

export interface Store {
  /** Set by stores shared by several daemons: their index can be stale, and blocks apply. */
  readonly blocks?: BlockStore;
  /** The most allocations (with their events and keys) one commit may carry: etcd caps a transaction's operations. */
  readonly commitCapacity: number;
  /**
   * Calls visit once per address the store keeps from being handed out: each allocation
   * (held: false) and each hold — an address cooling down or parked for a sticky pod
   * (held: true). How the daemon rebuilds its index at start-up; only allocations are counted.
   */
  forEachAllocated(visit: (space: string, family: Family, ip: string, held: boolean) => void): Promise<void>;
  cursors(): Promise<Map<string, string>>;
  cooling(): Promise<Cooling[]>;
  bindings(): Promise<Binding[]>;
  /** The addresses held by one attachment (empty when it is unknown). */
  attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]>;
  /** Every attachment of a network that holds an address (made by `node`, if given). */
  attachments(network: string, node?: string): Promise<AttachmentKey[]>;
  /** The allocations holding an address, in any space. */
  holders(ip: string): Promise<AllocationRecord[]>;
  /** Applies all changes or none, durably, before resolving. Concurrent calls may share a commit. */
  commit(changes: Change[]): Promise<void>;
  /**
   * Atomically claims (or confirms) a subnet of a supernet pool for a node: no two nodes can
   * hold one subnet. Resolves with the node's subnet, or null when none is free.
   */
  claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null>;
  /** Allocations matching every given field, in address order (see AllocationFilter.after). */
  allocations(filter: AllocationFilter): Promise<AllocationRecord[]>;
  /** Events matching every given field, newest first. */
  history(filter: HistoryFilter): Promise<HistoryEvent[]>;
  /** Drops events older than `before` (ms); resolves with how many went. */
  pruneHistory(before: number): Promise<number>;
  /**
   * One node's allocations that name a network namespace path: what the leak sweep judges.
   * One read per sweep, whatever the number of paths (netns paths only mean something on the
   * node that made them).
   */
  netnsAllocations(node: string): Promise<AllocationRecord[]>;
  /**
   * One sticky binding, read fresh: with a shared store another node may have made it.
   * Stores with one writer leave this out (the daemon's memory is the truth).
   */
  binding?(space: string, pod: string): Promise<Binding | undefined>;
  /** Every node subnet claim of a pool, for reports. */
  nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]>;
  /** A small durable write that proves the store can persist now; rejects with a StorageFault if not. */
  probe(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A commit lost a race in a shared store: another daemon holds these addresses. Nothing of
 * the commit was applied; the caller learns them as taken and allocates again.
 */
/** Address order within an attachment: IPv4 first, then by the address's text (ASCII, as stored). */
export const byAddress = (a: { family: number; ip: string }, b: { family: number; ip: string }): number =>
  a.family - b.family || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);

export class ConflictError extends Error {
  constructor(readonly taken: { space: string; family: Family; ip: string }[]) {
    super(`addresses already held elsewhere: ${taken.map((t) => t.ip).join(", ")}`);
    this.name = "ConflictError";
  }
}

/**
 * What a shared (cluster) store adds: block affinity and node liveness. The sqlite store has
 * one writer and needs neither.
 */
export interface BlockStore {
  /** Every block with its owner, optionally of one space. */
  blocks(space?: string): Promise<{ space: string; block: string; node: string }[]>;
  /** Claims an unowned block by compare-and-swap; false when someone else owns it. */
  claimBlock(space: string, block: string, node: string): Promise<boolean>;
  /** Releases a block only if `node` still owns it (compare-and-swap). */
  releaseBlock(space: string, block: string, node: string): Promise<boolean>;
  /** Nodes whose daemons keep their lease alive. */
  liveNodes(): Promise<string[]>;
}

/** The key of a range set's cursor: range sets are only unique within a space. */
export const cursorKey = (space: string, rangeSetKey: string): string => `${space}|${rangeSetKey}`;
