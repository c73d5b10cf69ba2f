/**
 * What a storage backend must promise (DESIGN rule 3). The daemon keeps the free-space index
 * in memory and decides every address; a backend only has to persist changes atomically and
 * durably, answer lookups by attachment, and replay what is taken at start-up. That is as
 * wide as the weakest backend can honour atomically; test/store/contract.ts holds every
 * backend to it.
 */
import type { Family } from "../ipam/address.ts";
import type { AttachmentKey } from "../protocol.ts";

export interface AllocationRecord {
  network: string;
  /** Canonical text of the address (RFC 5952 for IPv6): the key, with the network. */
  ip: string;
  family: Family;
  prefix: number;
  gateway: string | null;
  /** The range set it was allocated from (its canonical key). */
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

export type Change =
  | { op: "allocate"; record: AllocationRecord }
  | { op: "release"; network: string; ip: string; cause: string }
  /** The last address handed out from a range set, so the next ADD continues after it. */
  | { op: "cursor"; pool: string; ip: string };

export interface Store {
  /** Calls visit once per taken address: how the daemon rebuilds its index at start-up. */
  forEachTaken(visit: (network: string, family: Family, ip: string) => void): Promise<void>;
  cursors(): Promise<Map<string, string>>;
  /** The addresses held by one attachment (empty when it is unknown). */
  attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]>;
  /** Every attachment of a network that holds an address. */
  attachments(network: string): Promise<AttachmentKey[]>;
  /** Applies all changes or none, durably, before resolving. Concurrent calls may share a commit. */
  commit(changes: Change[]): Promise<void>;
  close(): Promise<void>;
}

/** The key of a range set's cursor: range sets are only unique within a network. */
export const cursorKey = (network: string, rangeSetKey: string): string => `${network}|${rangeSetKey}`;
