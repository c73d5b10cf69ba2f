/**
 * Each change of the Store contract as SQL, with one prepared statement per kind of write.
 * The rules (store.ts, Change) are checked here the way etcd's compare-and-swap checks them,
 * so a change that would hold an address twice fails its caller with a ConflictError, and the
 * group commit rolls back that caller's savepoint alone.
 */
import type { Statement } from "bun:sqlite";
import { type AllocationRecord, AttachmentHeld, type Block, type Change, ConflictError, type Hold, type HoldEvent, LimitError } from "../store.ts";
import { ipOrder } from "./schema.ts";

type Row = Record<string, string | number | null>;

const conflict = (a: { space: string; family: 4 | 6; ip: string }) => new ConflictError([{ space: a.space, family: a.family, ip: a.ip }]);

export class SqliteChanges {
  private readonly s: Record<string, Statement>;

  constructor(prepare: (sql: string) => Statement) {
    this.s = {
      insertAllocation: prepare(
        `INSERT INTO allocations (space, network, ip, family, prefix, gateway, pool, container_id, ifname, netns,
          pod_namespace, pod_name, pod_uid, node, created_at, static, ip_order, range_set)
         VALUES ($space, $network, $ip, $family, $prefix, $gateway, $pool, $containerID, $ifname, $netns,
          $podNamespace, $podName, $podUid, $node, $createdAt, $static, $ipOrder, $rangeSet)`,
      ),
      allocationAt: prepare("SELECT network, container_id, ifname, created_at FROM allocations WHERE space = ? AND ip = ?"),
      attachmentHeld: prepare("SELECT 1 FROM allocations WHERE container_id = ? AND network = ? AND ifname = ? LIMIT 1"),
      // Exactly this allocation: a stale release (another attachment's now) deletes nothing.
      deleteAllocation: prepare("DELETE FROM allocations WHERE space = ? AND ip = ? AND network = ? AND container_id = ? AND ifname = ? AND created_at = ?"),
      event: prepare(
        `INSERT INTO events (at, kind, network, ip, container_id, ifname, pod_namespace, pod_name, pod_uid, cause)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      holdAt: prepare("SELECT kind FROM holds WHERE space = ? AND ip = ?"),
      insertHold: prepare("INSERT INTO holds (space, ip, family, kind, until, pod, pool, note, reserved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      countInPool: prepare("SELECT count(*) AS n FROM allocations WHERE pool = ? AND pod_namespace = ?"),
      deleteHold: prepare("DELETE FROM holds WHERE space = ? AND ip = ?"),
      upsertBinding: prepare("INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?)"),
      deleteBinding: prepare("DELETE FROM bindings WHERE space = ? AND pod = ?"),
      upsertCursor: prepare("INSERT INTO cursors VALUES (?, ?) ON CONFLICT (pool) DO UPDATE SET ip = excluded.ip"),
      blockOwner: prepare("SELECT node FROM blocks WHERE space = ? AND cidr = ?"),
      insertBlock: prepare("INSERT INTO blocks VALUES (?, ?, ?)"),
      deleteBlock: prepare("DELETE FROM blocks WHERE space = ? AND cidr = ?"),
    };
  }

  writeCursor(rangeSet: string, ip: string): void {
    this.s.upsertCursor!.run(rangeSet, ip);
  }

  private eventOf(r: AllocationRecord, kind: string, cause: string, now: number): void {
    this.s.event!.run(now, kind, r.network, r.ip, r.containerID, r.ifname, r.podNamespace, r.podName, r.podUid, cause);
  }

  /** A reservation's event: no network, container or pod (see HoldEvent). */
  private holdEventOf(h: Hold, event: HoldEvent | undefined, now: number): void {
    if (event) this.s.event!.run(now, event.kind, "", h.ip, null, null, null, null, null, event.cause);
  }

  private holdAt(space: string, ip: string): string | undefined {
    return (this.s.holdAt!.get(space, ip) as { kind: string } | null)?.kind;
  }

  private allocated(space: string, ip: string): Row | null {
    return this.s.allocationAt!.get(space, ip) as Row | null;
  }

  /** Applies one caller's changes in order; cursors: where cursor moves go (written once per commit). */
  applyAll(changes: Change[], now: number, cursors: Map<string, string>): void {
    // Allocations of this caller's so far, by pool and namespace: a limit reports what the
    // namespace held before the caller, whatever part of its allocations the count includes.
    const own = new Map<string, number>();
    // Judged on the store as it was before the commit, whatever their place in it.
    for (const change of changes) if (change.op === "unheld" && this.s.attachmentHeld!.get(change.containerID, change.network, change.ifname) !== null) throw new AttachmentHeld(change);
    for (const change of changes) {
      if (change.op === "allocate" && change.record.pool !== null && change.record.podNamespace) {
        const key = `${change.record.pool}\0${change.record.podNamespace}`;
        own.set(key, (own.get(key) ?? 0) + 1);
      }
      if (change.op === "limit") this.limit(change, own.get(`${change.pool}\0${change.namespace}`) ?? 0);
      else this.apply(change, now, cursors);
    }
  }

  private apply(change: Change, now: number, cursors: Map<string, string>): void {
    switch (change.op) {
      case "allocate": {
        const r = change.record;
        if (this.holdAt(r.space, r.ip) !== undefined) throw conflict(r);
        try {
          this.s.insertAllocation!.run({ ...r, pool: r.pool ?? "", static: r.static ? 1 : 0, ipOrder: ipOrder(r.ip) });
        } catch (err) {
          // Allocated already (the primary key): the same answer a shared store gives.
          if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") throw conflict(r);
          throw err;
        }
        this.eventOf(r, change.kind ?? (r.static ? "static" : "allocated"), change.cause ?? "cni add", now);
        return;
      }
      case "release": {
        const r = change.record;
        if (this.s.deleteAllocation!.run(r.space, r.ip, r.network, r.containerID, r.ifname, r.createdAt).changes === 0) {
          // Released elsewhere (an operator, a sweep) meanwhile: nothing to do, no second
          // event. Held by another allocation or a hold now: not ours to touch.
          if (this.allocated(r.space, r.ip) || this.holdAt(r.space, r.ip) !== undefined) throw conflict(r);
          return;
        }
        this.eventOf(r, change.kind ?? "released", change.cause, now);
        return;
      }
      case "hold":
        if (this.hold(change.hold)) this.holdEventOf(change.hold, change.event, now);
        return;
      case "unhold":
        if (this.unhold(change.hold)) this.holdEventOf(change.hold, change.event, now);
        return;
      case "limit":
        return; // counted by applyAll, which knows the caller's own allocations
      case "unheld":
        return; // judged by applyAll before any change
      case "bind": {
        const b = change.binding;
        this.s.upsertBinding!.run(b.space, b.pod, b.family, b.ip, b.releasedAt);
        return;
      }
      case "unbind":
        this.s.deleteBinding!.run(change.space, change.pod);
        return;
      case "cursor":
        cursors.set(change.rangeSet, change.ip);
        return;
      case "claim":
        return this.claim(change.block);
      case "unclaim": {
        const b = change.block;
        const owner = (this.s.blockOwner!.get(b.space, b.cidr) as { node: string } | null)?.node;
        if (owner === undefined) return;
        if (owner !== b.node) throw new ConflictError([], [{ ...b, node: owner }]);
        this.s.deleteBlock!.run(b.space, b.cidr);
        return;
      }
    }
  }

  /** False when this very hold was in place already. */
  private hold(h: Hold): boolean {
    const kind = this.holdAt(h.space, h.ip);
    if (kind === h.kind) return false;
    if (kind !== undefined || this.allocated(h.space, h.ip)) throw conflict(h);
    this.s.insertHold!.run(h.space, h.ip, h.family, h.kind, h.until, h.pod, h.pool ?? null, h.note ?? null, h.by ?? null);
    return true;
  }

  /** False when the address was free already (nothing to do). */
  private unhold(h: Hold): boolean {
    const kind = this.holdAt(h.space, h.ip);
    if (kind === undefined) {
      if (this.allocated(h.space, h.ip)) throw conflict(h);
      return false;
    }
    if (kind !== h.kind) throw conflict(h);
    this.s.deleteHold!.run(h.space, h.ip);
    return true;
  }

  /**
   * Counted within the commit's own transaction, after the caller's allocations so far (`own`
   * of them): exact, since this daemon is the database's only writer.
   */
  private limit(change: Extract<Change, { op: "limit" }>, own: number): void {
    const count = (this.s.countInPool!.get(change.pool, change.namespace) as { n: number }).n;
    if (count > change.max) throw new LimitError(change.pool, change.namespace, change.max, count - own);
  }

  private claim(b: Block): void {
    const owner = (this.s.blockOwner!.get(b.space, b.cidr) as { node: string } | null)?.node;
    if (owner === b.node) return;
    if (owner !== undefined) throw new ConflictError([], [{ ...b, node: owner }]);
    this.s.insertBlock!.run(b.space, b.cidr, b.node);
  }
}
