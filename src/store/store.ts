/**
 * What a storage backend must promise (DESIGN rule 3): exactly what the engine emits and asks.
 * The engine keeps the free-space index in memory and decides every address; a backend
 * persists its changes atomically and durably, refuses one that would hold an address twice,
 * answers the engine's and the operators' questions, and replays at start what it holds.
 * test/store/contract.ts holds every backend to all of it: a backend that passes it needs
 * nothing else to work.
 */
import type { Family } from "../ipam/address.ts";
import type { AllocateKind, AllocationFilter, AllocationRecord, AttachmentKey, Binding, Block, HistoryEvent, HistoryFilter, Hold, HoldEvent, ReleaseKind } from "./records.ts";

export * from "./records.ts";

/**
 * One change of a commit. Those that touch an address are judged against the store as the
 * commit's earlier changes leave it (a release, then a hold of the same address, is a swap):
 * - allocate: the address must be free (neither allocated nor held), else ConflictError.
 * - release: removes exactly this allocation (its event written); an address found free was
 *   released elsewhere and is left alone (no second event); one held otherwise conflicts.
 * - hold: the address must be free, or hold this very hold already.
 * - unhold: removes this hold; found free, nothing to do; held otherwise, a conflict.
 * - claim: the block must be unclaimed or this node's already; unclaim: only the owner's goes.
 * - limit: after the commit, the namespace holds at most `max` of the pool's allocations (in
 *   every space, on every node), else LimitError; counted exactly, whoever else commits.
 * - unheld: the attachment holds no address in its network before the commit, else
 *   AttachmentHeld (an ADD's check that it is the attachment's first, made in its commit
 *   rather than by a read before it: on a shared store that read was a round trip per ADD).
 */
export type Change =
  /** kind defaults to "static" or "allocated" after record.static. */
  | { op: "allocate"; record: AllocationRecord; kind?: AllocateKind; cause?: string }
  | { op: "release"; record: AllocationRecord; kind?: ReleaseKind; cause: string }
  /** event: written to the address's history with the hold (reservations). */
  | { op: "hold"; hold: Hold; event?: HoldEvent }
  | { op: "unhold"; hold: Hold; event?: HoldEvent }
  | { op: "bind"; binding: Binding }
  | { op: "unbind"; space: string; pod: string }
  /** The last address handed out from a range set (see rangeSetCursor), so the next ADD continues after it. */
  | { op: "cursor"; rangeSet: string; ip: string }
  | { op: "claim"; block: Block }
  | { op: "unclaim"; block: Block }
  | { op: "limit"; pool: string; namespace: string; max: number }
  | ({ op: "unheld" } & NetworkAttachment);

/** An attachment and the network it is in: what an unheld change and AttachmentHeld name. */
export type NetworkAttachment = AttachmentKey & { network: string };

/** Picks this node's subnet: keeps `mine` when still right, or returns a free one (null: none left). */
export type SubnetChooser = (claimedByOthers: string[], mine: string | null) => string | null;

export interface Store {
  /**
   * Other daemons write this store too (etcd). The engine draws every consequence of it in
   * one place (engine/sharing.ts): its memory can be stale, blocks apply, a failed commit
   * may have applied, GC and sweeps keep to this node's share.
   */
  readonly shared: boolean;
  /** The most allocations (with their events and keys) one commit may carry. */
  readonly commitCapacity: number;
  /** Told of each durable commit: how long it took and how many callers it served. */
  onCommit: ((seconds: number, callers: number) => void) | undefined;

  /** Applies all changes or none, durably, before resolving (see Change); concurrent calls may share a commit. */
  commit(changes: Change[]): Promise<void>;

  /**
   * Calls visit once per address the store keeps from being handed out: each allocation
   * (held: false) and each hold (held: true), of one space or all. How the engine builds its
   * index at start-up, and re-reads a space it may have got wrong.
   */
  forEachTaken(visit: (space: string, family: Family, ip: string, held: boolean) => void, space?: string): Promise<void>;
  /** Every range set's cursor, by rangeSetCursor key. */
  cursors(): Promise<Map<string, string>>;
  /** Every hold (of one space, if given). */
  holds(space?: string): Promise<Hold[]>;
  /** Every sticky binding. */
  bindings(): Promise<Binding[]>;
  /** One sticky binding, read fresh (another daemon may have made or ended it). */
  binding(space: string, pod: string): Promise<Binding | undefined>;
  /** Every block claim (of one space, if given). */
  blocks(space?: string): Promise<Block[]>;
  /** Says this node is alive for `ttlSeconds`, and keeps saying it until close(). */
  announce(node: string, ttlSeconds: number): Promise<void>;
  /** Nodes whose announcement has not run out. */
  liveNodes(): Promise<string[]>;
  /** Whether any address from `first` to `last` of a space is allocated or held (a block's emptiness). */
  anyTaken(space: string, first: string, last: string): Promise<boolean>;

  /** The addresses held by one attachment (empty when it is unknown), IPv4 first. */
  attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]>;
  /** Every attachment of a network that holds an address (made by `node`, if given). */
  attachments(network: string, node?: string): Promise<AttachmentKey[]>;
  /** The allocations holding an address, in any space. */
  holders(ip: string): Promise<AllocationRecord[]>;
  /** Allocations matching every given field, in address order (see AllocationFilter.after). */
  allocations(filter: AllocationFilter): Promise<AllocationRecord[]>;
  /**
   * One node's allocations that name a network namespace path: what the leak sweep judges.
   * One read per sweep, whatever the number of paths (netns paths only mean something on the
   * node that made them).
   */
  netnsAllocations(node: string): Promise<AllocationRecord[]>;
  /**
   * How many of a named pool's addresses each namespace holds (of `node`'s allocations only,
   * if given): the tenants' view of a pool, and its per-namespace metrics.
   */
  namespaceUse(pool: string, node?: string): Promise<Map<string, number>>;
  /** Events matching every given field, newest first (see HistoryFilter.before). */
  history(filter: HistoryFilter): Promise<HistoryEvent[]>;
  /** Drops events older than `before` (ms); resolves with how many went. */
  pruneHistory(before: number): Promise<number>;

  /**
   * Atomically claims (or confirms) a subnet of a supernet pool for a node: no two nodes can
   * hold one subnet. Resolves with the node's subnet, or null when none is free.
   */
  claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null>;
  /** Every node subnet claim of a pool, for reports. */
  nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]>;

  /** A small durable write that proves the store can persist now; rejects with a StorageFault if not. */
  probe(): Promise<void>;
  /** Finishes what is queued, stops announcing, lets go of the store. */
  close(): Promise<void>;
}

/**
 * A commit refused because an address or a block is not as its changes required: held by
 * someone else (another daemon, or an allocation this daemon's memory did not know). Nothing
 * of the commit was applied; the caller learns what it lost and plans again.
 */
export class ConflictError extends Error {
  constructor(
    readonly taken: { space: string; family: Family; ip: string }[],
    readonly blocks: Block[] = [],
  ) {
    super(`already held elsewhere: ${[...taken.map((t) => t.ip), ...blocks.map((b) => `block ${b.cidr}`)].join(", ")}`);
    this.name = "ConflictError";
  }
}

/**
 * A commit refused because a namespace would hold more of a pool's addresses than its limit.
 * Nothing of the commit was applied; `count` is how many the namespace holds now.
 */
export class LimitError extends Error {
  constructor(
    readonly pool: string,
    readonly namespace: string,
    readonly max: number,
    readonly count: number,
  ) {
    super(`namespace ${namespace} holds ${count} of pool ${pool}'s addresses, its limit (maxPerNamespace) is ${max}`);
    this.name = "LimitError";
  }
}

/**
 * A commit refused because its attachment holds addresses already (see the unheld change): an
 * ADD the runtime repeated. Nothing of the commit was applied; the caller answers with what the
 * attachment holds.
 */
export class AttachmentHeld extends Error {
  readonly attachment: NetworkAttachment;

  constructor({ network, containerID, ifname }: NetworkAttachment) {
    super(`container ${containerID} interface ${ifname} holds addresses in network ${network} already`);
    this.name = "AttachmentHeld";
    this.attachment = { network, containerID, ifname };
  }
}

/** The key of a range set's cursor: a range set is only unique within its address space. */
export const rangeSetCursor = (space: string, rangeSetKey: string): string => `${space}|${rangeSetKey}`;
