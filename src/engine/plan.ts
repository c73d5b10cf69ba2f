/**
 * What a planner returns: the changes to commit, and what the engine's memory becomes — part
 * at once, so no concurrent plan can count on the same address (takes, holds ending, bindings),
 * part only once the changes are durable (frees, new holds, cursors, counts). The apply path
 * (apply.ts) is the one place that carries a plan out.
 */
import type { Family } from "../ipam/address.ts";
import type { AllocationRecord, Binding, Block, Change, Hold, ReleaseKind } from "../store/store.ts";

/** An address of an address space, as memory keeps it. */
export interface Address {
  space: string;
  family: Family;
  value: bigint;
}

export interface Plan {
  changes: Change[];
  /** Taken at once, before the commit: no other plan can pick them meanwhile. */
  takes: Address[];
  /** Holds this plan ends: out of every other plan's reach at once. */
  ends: Hold[];
  /** Bindings as they become at once (to: undefined, gone), put back if the commit surely failed. */
  binds: { space: string; pod: string; to: Binding | undefined }[];
  /** Once durable: addresses no longer taken. */
  frees: Address[];
  /** Once durable: holds in force (their addresses are taken already). */
  holds: Hold[];
  /** Once durable: range-set cursors moved (rangeSetCursor key → last address handed out). */
  cursors: [string, bigint][];
  /** Once durable: blocks this node now owns, or no longer owns. */
  claims: Block[];
  unclaims: Block[];
  /** Once durable: allocations made and released (counts, the observer, answers). */
  allocated: AllocationRecord[];
  released: { record: AllocationRecord; kind: ReleaseKind }[];
}

export function emptyPlan(): Plan {
  return { changes: [], takes: [], ends: [], binds: [], frees: [], holds: [], cursors: [], claims: [], unclaims: [], allocated: [], released: [] };
}
