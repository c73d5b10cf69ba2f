/**
 * The conditions an etcd commit is written under, and how they are judged when a transaction
 * fails: the compare-and-swap vocabulary of commit.ts.
 */
import type { Compare, KeyValue, Op } from "../etcd-client.ts";
import type { NetworkAttachment } from "../store.ts";
import type { StoredEvent } from "./values.ts";

/**
 * A condition of a commit, on the key's state before it. When it fails: orAbsent, the change
 * is done already if the key is gone (a release of what was released elsewhere, the end of a
 * hold nobody holds); orSame, if the key holds this value (a hold, claim or allocation made
 * before, by this commit's own earlier attempt when its answer was lost).
 * Either way the commit is built again without that change's own work at the key.
 */
export interface Guard {
  compare: Compare;
  orAbsent?: boolean;
  orSame?: string;
  /** A namespace limit's range compare (limits.ts): when it fails, the count is taken again. */
  limit?: boolean;
  /**
   * An attachment's range compare (no att/ key under it; the unheld change). When it fails,
   * the keys found there are read: exactly the caller's own att/ keys with their values (key
   * to value here) is its own earlier attempt, done; anything else is AttachmentHeld.
   */
  unheld?: { attachment: NetworkAttachment; own: Map<string, string> };
}

/** What a batch writes, as it is built: its events go to one ev/ key, eventId (see commit.ts). */
export interface Txn {
  guards: Guard[];
  ops: Op[];
  eventId: string;
  events: StoredEvent[];
}

/** Keys found gone (orAbsent) or already as wanted (orSame) by an earlier round of one commit. */
export interface Found {
  gone: Set<string>;
  same: Set<string>;
}

/** Whether a compare holds for a key's current value (kv: undefined when the key is gone), as etcd decides it. */
export function holds(c: Compare, kv: KeyValue | undefined): boolean {
  if (c.target === "VALUE") return kv !== undefined && kv.value === c.value;
  const actual = c.target === "CREATE" ? (kv?.createRevision ?? 0) : (kv?.modRevision ?? 0);
  const wanted = c.target === "CREATE" ? c.create_revision : c.mod_revision;
  return c.result === "EQUAL" ? actual === wanted : c.result === "GREATER" ? actual > wanted : actual < wanted;
}

export const keyOf = (op: Op): string => ("put" in op ? op.put.key : "delete" in op ? op.delete.key : op.range.key);
export const absent = (key: string): Compare => ({ key, target: "CREATE", result: "EQUAL", create_revision: 0 });
export const equal = (key: string, value: string): Compare => ({ key, target: "VALUE", result: "EQUAL", value });

