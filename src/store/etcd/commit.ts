/**
 * Changes as etcd transactions. An address's a/ key is written under a compare-and-swap, so
 * two daemons can never hold one address: the loser's commit fails whole with a ConflictError
 * naming what it lost. Concurrent callers of one daemon share one transaction where they fit
 * etcd's limit on operations (group commit; several in the air at once, see flights.ts); a
 * commit is durable (raft quorum) before it resolves. A hold (cooldown, a sticky pod's parked address) keeps its a/ key with a marker
 * instead of a record, so no other daemon can create it meanwhile.
 */
import { type EtcdClient, type KeyValue, type Op, prefixEnd } from "../etcd-client.ts";
import { ErrorCode, IpamError } from "../../errors.ts";
import { type AllocationRecord, AttachmentHeld, type Change, ConflictError, type HistoryEvent } from "../store.ts";
import { eventId, type Layout } from "./layout.ts";
import { absent, equal, type Found, type Guard, holds, keyOf, type Txn } from "./guards.ts";
import { limitCompares, limitsOf } from "./limits.ts";
import { type Cost, type CursorMove, GroupCommit, type Pending, type Transactions } from "./flights.ts";
import { holdMarker, parseValue, type StoredEvent, storedEvents } from "./values.ts";

/**
 * etcd refuses a transaction whose compare list, success list or failure list, each judged
 * alone, is longer than --max-txn-ops (128 by default). The failure list holds one range per
 * compare, so a batch is cut where its distinct written keys or its compares would pass this.
 */
export const MAX_OPS = 120;

/**
 * Allocations one caller may commit at once: each writes up to 9 keys (a/, att/, n/, pod/,
 * nsp/, its event's three index keys, and sp/ the first time this daemon allocates in its
 * space) under one compare, plus the transaction's one ev/ key, and a caller's changes are
 * never split across transactions.
 */
export const COMMIT_CAPACITY = Math.floor(MAX_OPS / 10);

/** Rounds a commit with namespace limits may recount before it gives up (another daemon kept allocating). */
const LIMIT_ROUNDS = 16;

/** What an event tells of its address's holder: an allocation, or nobody (a reservation). */
type EventSubject = Pick<AllocationRecord, "network" | "ip"> & { [K in "containerID" | "ifname" | "podNamespace" | "podName" | "podUid"]: string | null };

/**
 * An allocation's record as its a/ and att/ keys hold it, made once per record: a caller's
 * changes are translated twice (its cost, then its transaction) and a release compares it.
 */
const stored = new WeakMap<AllocationRecord, string>();
function recordValue(r: AllocationRecord): string {
  let value = stored.get(r);
  if (value === undefined) stored.set(r, (value = JSON.stringify(r)));
  return value;
}

const reservationSubject = (ip: string): EventSubject => ({ network: "", ip, containerID: null, ifname: null, podNamespace: null, podName: null, podUid: null });

export class EtcdCommitter implements Transactions {
  private eventSeq = 0;
  /** How callers' commits are batched into transactions and sent (flights.ts). */
  readonly group = new GroupCommit(this);
  /** Asked of every key of every queued caller (flights.ts): made once. */
  private readonly cursorPrefix: string;
  private readonly spacePrefix: string;
  /**
   * The sp/ keys of spaces this daemon has committed an allocation in: written with its first
   * one there (a put of an empty value: harmless when another daemon wrote it first), so any
   * space with an allocation has its key, and holders() finds the address in it.
   */
  private readonly registered = new Set<string>();

  constructor(
    private readonly client: EtcdClient,
    private readonly layout: Layout,
    private readonly node: string,
  ) {
    this.cursorPrefix = layout.cursors();
    this.spacePrefix = layout.spaces();
  }

  commit(changes: Change[]): Promise<void> {
    return this.group.commit(changes);
  }

  /** A transaction to build; its events will share one ev/ key (see writeEvents). */
  private txn(now: number): Txn {
    return { guards: [], ops: [], eventId: eventId(now, this.node, this.eventSeq++), events: [] };
  }

  /** An event of the transaction, with its index keys (naming the transaction's ev/ key). */
  private event(txn: Txn, kind: HistoryEvent["kind"], r: EventSubject, cause: string, now: number): void {
    const e: StoredEvent = { n: txn.events.length, at: now, kind, network: r.network, ip: r.ip, containerID: r.containerID, ifname: r.ifname, podNamespace: r.podNamespace, podName: r.podName, podUid: r.podUid, cause };
    txn.events.push(e);
    for (const key of this.layout.eventIndexes({ ...e, id: 0 }, txn.eventId)) txn.ops.push({ put: { key, value: "" } });
  }

  /**
   * The transaction's events, in one ev/ key (values.ts): a key per event would cost etcd as
   * much as the allocation's own keys, and every event of a commit has its time anyway.
   */
  private writeEvents(txn: Txn): void {
    if (txn.events.length > 0) txn.ops.push({ put: { key: this.layout.event(txn.eventId), value: storedEvents(txn.events) } });
  }

  /**
   * One caller's changes. The first change at an address's a/ key sets the guard on the key's
   * state before the commit; later changes at it (a release then a hold: a swap) follow from
   * that state. Changes found done already (see Found) leave out their own work there.
   */
  private translate(changes: Change[], now: number, found: Found, txn: Txn, writeCursors = true): void {
    const touched = new Set<string>();
    /** Guards the key on its first touch; false when this change's work there is done already. */
    const first = (key: string, guard: () => Guard): boolean => {
      if (touched.has(key)) return true;
      touched.add(key);
      if (found.gone.has(key) || found.same.has(key)) return false;
      txn.guards.push(guard());
      return true;
    };
    for (const change of changes) {
      if (change.op === "allocate" || change.op === "release" || change.op === "hold" || change.op === "unhold") this.addressChange(change, now, first, txn);
      // Limits are counted and guarded per transaction (commitOne), not per change; cursor
      // moves are left out of a batch flying beside the carrier (flights.ts).
      else if (change.op !== "limit" && change.op !== "unheld" && (writeCursors || change.op !== "cursor")) this.otherChange(change, first, txn.ops);
    }
    for (const change of changes) if (change.op === "unheld") this.unheld(change, changes, first);
  }

  /** No att/ key under the attachment: one range compare, answered with what is there when it fails. */
  private unheld(attachment: Extract<Change, { op: "unheld" }>, changes: Change[], first: (key: string, guard: () => Guard) => boolean): void {
    const prefix = this.layout.attachment(attachment.containerID, attachment.network, attachment.ifname);
    const own = new Map<string, string>();
    for (const c of changes) {
      if (c.op !== "allocate") continue;
      const key = this.layout.attachmentEntry(c.record);
      if (key.startsWith(prefix)) own.set(key, recordValue(c.record));
    }
    first(prefix, () => ({ compare: { ...absent(prefix), rangeEnd: prefixEnd(prefix) }, unheld: { attachment, own } }));
  }

  /** A change at an address's a/ key, with its secondary keys and its event. */
  private addressChange(change: Extract<Change, { op: "allocate" | "release" | "hold" | "unhold" }>, now: number, first: (key: string, guard: () => Guard) => boolean, txn: Txn): void {
    const L = this.layout;
    const ops = txn.ops;
    switch (change.op) {
      case "allocate": {
        const r = change.record;
        const key = L.allocation(r.space, r.ip);
        const value = recordValue(r);
        // This very record there already: the transaction was applied by an attempt whose
        // answer was lost (the client sends it again on another member), so it is done.
        if (!first(key, () => ({ compare: absent(key), orSame: value }))) return;
        const { attachment, references } = L.entries(r);
        ops.push({ put: { key, value } }, { put: { key: attachment, value } }, ...references.map((ref) => ({ put: { key: ref, value: "" } })));
        const space = L.space(r.space);
        if (!this.registered.has(space)) ops.push({ put: { key: space, value: "" } });
        return this.event(txn, change.kind ?? (r.static ? "static" : "allocated"), r, change.cause ?? "cni add", now);
      }
      case "release": {
        const r = change.record;
        const key = L.allocation(r.space, r.ip);
        // The secondary keys go in any case: harmless when already gone.
        const { attachment, references } = L.entries(r);
        for (const ref of [attachment, ...references]) ops.push({ delete: { key: ref } });
        // A stale release (released elsewhere and handed out again meanwhile) must not touch
        // the newer owner's key: only the value this very allocation wrote may go.
        if (!first(key, () => ({ compare: equal(key, recordValue(r)), orAbsent: true }))) return;
        ops.push({ delete: { key } });
        return this.event(txn, change.kind ?? "released", r, change.cause, now);
      }
      case "hold": {
        const h = change.hold;
        const key = L.allocation(h.space, h.ip);
        if (!first(key, () => ({ compare: absent(key), orSame: holdMarker(h) }))) return;
        ops.push({ put: { key, value: holdMarker(h) } }, { put: { key: L.hold(h.space, h.ip), value: JSON.stringify(h) } });
        if (change.event) this.event(txn, change.event.kind, reservationSubject(h.ip), change.event.cause, now);
        return;
      }
      case "unhold": {
        const h = change.hold;
        const key = L.allocation(h.space, h.ip);
        ops.push({ delete: { key: L.hold(h.space, h.ip) } });
        if (!first(key, () => ({ compare: equal(key, holdMarker(h)), orAbsent: true }))) return;
        ops.push({ delete: { key } });
        if (change.event) this.event(txn, change.event.kind, reservationSubject(h.ip), change.event.cause, now);
      }
    }
  }

  /** Bindings, cursors and block claims: keys of their own. */
  private otherChange(change: Extract<Change, { op: "bind" | "unbind" | "cursor" | "claim" | "unclaim" }>, first: (key: string, guard: () => Guard) => boolean, ops: Op[]): void {
    const L = this.layout;
    switch (change.op) {
      case "bind":
        ops.push({ put: { key: L.binding(change.binding.space, change.binding.pod), value: JSON.stringify(change.binding) } });
        return;
      case "unbind":
        ops.push({ delete: { key: L.binding(change.space, change.pod) } });
        return;
      case "cursor":
        ops.push({ put: { key: L.cursor(change.rangeSet), value: change.ip } });
        return;
      case "claim": {
        const key = L.block(change.block.space, change.block.cidr);
        if (first(key, () => ({ compare: absent(key), orSame: change.block.node }))) ops.push({ put: { key, value: change.block.node } });
        return;
      }
      case "unclaim": {
        const key = L.block(change.block.space, change.block.cidr);
        if (first(key, () => ({ compare: equal(key, change.block.node), orAbsent: true }))) ops.push({ delete: { key } });
      }
    }
  }

  unguarded(key: string): boolean {
    return key.startsWith(this.cursorPrefix) || key.startsWith(this.spacePrefix);
  }

  /**
   * The keys a caller's changes write and the compares they add, as translate builds them. A
   * namespace limit counts as its count range's prefix: two commits counted against one limit
   * never fly at once, or each would make the other count again (limits.ts) and, with
   * several in the air, exhaust its rounds where one at a time would have committed.
   */
  cost(changes: Change[]): Cost {
    // Its own event id, so no index key of its events is taken for another caller's.
    const txn = this.txn(0);
    this.translate(changes, 0, { gone: new Set(), same: new Set() }, txn);
    const limits = changes.flatMap((c) => (c.op === "limit" ? [this.layout.namespaceUse(c.pool, c.namespace)] : []));
    return { keys: [...new Set([...txn.ops.map(keyOf), ...limits])], guards: txn.guards.length, limited: limits.length > 0 };
  }

  /**
   * One transaction for a batch of callers; a failed compare becomes a ConflictError naming
   * what was lost. When only changes already done failed (see Guard), the transaction is
   * built again without their work at those keys, on the condition that the keys found gone
   * are still gone; each round settles at least one guard, so it ends.
   */
  async commitOne(pending: Pending[], now: number, cursors: { write: boolean; extra: CursorMove[] } = { write: true, extra: [] }): Promise<void> {
    const found: Found = { gone: new Set(), same: new Set() };
    for (let round = 0; ; round++) {
      // An allocation found done already no longer adds to its namespace's count.
      const limits = limitsOf(pending.flatMap((p) => p.changes.filter((c) => c.op !== "allocate" || found.same.size === 0 || !found.same.has(this.layout.allocation(c.record.space, c.record.ip)))));
      const txn = this.txn(now);
      // Moves carried for earlier batches first: the batch's own, planned later, stand.
      for (const move of cursors.extra) txn.ops.push({ put: { key: this.layout.cursor(move.rangeSet), value: move.ip } });
      for (const p of pending) this.translate(p.changes, now, found, txn, cursors.write);
      this.writeEvents(txn);
      for (const key of found.gone) txn.guards.push({ compare: absent(key) });
      for (const compare of await limitCompares(this.client, this.layout, limits)) txn.guards.push({ compare, limit: true });
      // Two callers moving one cursor: the later write is the one that stands.
      const byKey = new Map<string, Op>();
      for (const op of txn.ops) {
        byKey.delete(keyOf(op));
        byKey.set(keyOf(op), op);
      }
      const compares = txn.guards.map((g) => g.compare);
      // On failure, each guarded key is read; an attachment's whole range (a limit's is too long).
      const reads = txn.guards.map((g) => ({ range: { key: g.compare.key, ...(g.unheld ? { rangeEnd: prefixEnd(g.compare.key) } : {}) } }));
      const result = await this.client.txn(compares, [...byKey.values()], reads);
      if (result.succeeded) {
        for (const key of byKey.keys()) if (key.startsWith(this.spacePrefix)) this.registered.add(key);
        return;
      }
      // A limit's range compare is not judged here (its range may be long): when nothing else
      // failed, it did, and the count is taken again.
      const failed = txn.guards.flatMap((g, i) => (g.limit || holds(g.compare, result.ranges[i]![0]) ? [] : [{ g, kv: result.ranges[i]![0], i }]));
      if (failed.length === 0 && limits.length > 0) {
        if (round < LIMIT_ROUNDS) continue;
        throw new IpamError(ErrorCode.TryAgainLater, `the count of a namespace limit (${limits.map((l) => `${l.namespace} in ${l.pool}`).join(", ")}) kept changing under ${LIMIT_ROUNDS} tries; try again`);
      }
      const ownAttempt = (g: Guard, i: number) => g.unheld !== undefined && result.ranges[i]!.length > 0 && result.ranges[i]!.every((kv) => g.unheld!.own.get(kv.key) === kv.value);
      const settled = failed.filter(({ g, kv, i }) => (g.orAbsent && kv === undefined) || (g.orSame !== undefined && kv?.value === g.orSame) || ownAttempt(g, i));
      if (failed.length === 0 || settled.length < failed.length) throw this.conflict(failed.filter((f) => !settled.includes(f)));
      for (const { g, kv } of settled) (kv === undefined ? found.gone : found.same).add(g.compare.key);
    }
  }

  /**
   * What a batch lost: the addresses and blocks whose keys were not as its guards required,
   * or (first: the caller answers with what it holds) an attachment that holds addresses.
   */
  private conflict(failed: { g: Guard; kv: KeyValue | undefined }[]): ConflictError | AttachmentHeld {
    const held = failed.find(({ g }) => g.unheld);
    if (held) return new AttachmentHeld(held.g.unheld!.attachment);
    const blockBase = this.layout.blocks();
    const taken: { space: string; family: 4 | 6; ip: string }[] = [];
    const blocks: { space: string; cidr: string; node: string }[] = [];
    for (const { g, kv } of failed) {
      if (g.compare.key.startsWith(blockBase)) {
        const [space, cidr] = this.layout.partsOf(g.compare.key, blockBase);
        blocks.push({ space: space!, cidr: cidr!, node: kv?.value ?? "" });
      } else if (kv) {
        const v = parseValue(kv);
        taken.push({ space: v.space, family: v.family, ip: v.ip });
      }
    }
    return new ConflictError(taken, blocks);
  }
}
