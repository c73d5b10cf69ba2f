/**
 * Changes as etcd transactions. Each allocation is created under a compare-and-swap on its a/
 * key (create_revision == 0), so two daemons can never hold one address: the loser's commit
 * fails whole with a ConflictError naming what it lost. Concurrent callers of one daemon share
 * one transaction where they fit etcd's limit on operations (group commit), and a commit is
 * durable (raft quorum) before it resolves.
 *
 * An address resting after release (cooldown) or parked for a sticky pod keeps its a/ key,
 * holding a marker instead of a record, so no other daemon can create it meanwhile (also when
 * the release found the key already gone: the hold then starts from a free key).
 */
import { type Compare, type EtcdClient, type KeyValue, type Op } from "../etcd-client.ts";
import { type AllocationRecord, type Change, ConflictError, type HistoryEvent } from "../store.ts";
import { eventId, type Layout } from "./layout.ts";
import { holdMarker, parseValue, recordsOf, type StoredEvent } from "./values.ts";

/**
 * etcd refuses a transaction whose compare list, success list or failure list, each judged
 * alone, is longer than --max-txn-ops (128 by default). The failure list holds one range per
 * compare, so a batch is cut where its distinct written keys or its compares would pass this.
 */
export const MAX_OPS = 120;

/**
 * Allocations one caller may commit at once: each writes up to 9 keys (a/, att/, n/, ip/,
 * pod/, the event and three of its index keys) under one compare, and a caller's changes are
 * never split across transactions.
 */
export const COMMIT_CAPACITY = Math.floor(MAX_OPS / 9);

interface Pending {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * A condition of a commit. orAbsent: the change it guards is done already when the key is
 * gone (a release of an allocation somebody else released, the end of a hold nobody holds):
 * then the commit is sent again without what that change would do at the key.
 */
interface Guard {
  compare: Compare;
  orAbsent?: boolean;
}

/** A change as translate takes it; read: a release without its record, guarded on the revision read. */
interface Prepared {
  change: Change;
  read?: Compare;
}

/** The ops and guards of a batch as they are built, with the events it writes numbered in order. */
interface Txn {
  guards: Guard[];
  ops: Op[];
  events: number;
}

/** Whether a compare holds for a key's current value (kv: undefined when the key is gone), as etcd decides it. */
function holds(c: Compare, kv: KeyValue | undefined): boolean {
  if (c.target === "VALUE") return kv !== undefined && kv.value === c.value;
  const actual = c.target === "CREATE" ? (kv?.createRevision ?? 0) : (kv?.modRevision ?? 0);
  const wanted = c.target === "CREATE" ? c.create_revision : c.mod_revision;
  return c.result === "EQUAL" ? actual === wanted : c.result === "GREATER" ? actual > wanted : actual < wanted;
}

const keyOf = (op: Op): string => ("put" in op ? op.put.key : "delete" in op ? op.delete.key : op.range.key);

export class EtcdCommitter {
  private queue: Pending[] = [];
  private flushing = false;
  private eventSeq = 0;
  onCommit: ((seconds: number, callers: number) => void) | undefined;

  constructor(
    private readonly client: EtcdClient,
    private readonly layout: Layout,
    private readonly node: string,
  ) {}

  get idle(): boolean {
    return !this.flushing && this.queue.length === 0;
  }

  commit(changes: Change[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private event(txn: Txn, kind: HistoryEvent["kind"], r: AllocationRecord, cause: string, now: number): void {
    const id = eventId(now, this.node, this.eventSeq++);
    const e: StoredEvent = { n: txn.events++, at: now, kind, network: r.network, ip: r.ip, containerID: r.containerID, ifname: r.ifname, podNamespace: r.podNamespace, podName: r.podName, podUid: r.podUid, cause };
    txn.ops.push({ put: { key: this.layout.event(id), value: JSON.stringify(e) } });
    for (const key of this.layout.eventIndexes({ ...e, id: 0 }, id)) txn.ops.push({ put: { key, value: "" } });
  }

  /**
   * A release names its record so the secondary keys and the event can be written; when the
   * caller did not pass it, it is read here (one more round trip), and the release is guarded
   * on what was read: the key unchanged since, or still absent.
   */
  private async prepare(change: Change, gone: Set<string>): Promise<Prepared> {
    if (change.op !== "release" || change.record) return { change };
    const key = this.layout.allocation(change.space, change.ip);
    const [kv] = await this.client.range(key);
    if (!kv) {
      gone.add(key);
      return { change };
    }
    return { change: { ...change, record: recordsOf([kv])[0] }, read: { key, target: "MOD", result: "EQUAL", mod_revision: kv.modRevision } };
  }

  /**
   * The ops and conditions of one change. gone: the a/ keys found absent where a change
   * expected them (see Guard): what releases and hold ends would do there is done already;
   * a cooldown or parking still puts its hold there, on the gone keys' CREATE==0 guard.
   */
  private translate({ change, read }: Prepared, now: number, gone: Set<string>, txn: Txn): void {
    const { ops, guards } = txn;
    const L = this.layout;
    switch (change.op) {
      case "allocate": {
        const r = change.record;
        const key = L.allocation(r.space, r.ip);
        guards.push({
          compare: change.replacesHold
            ? { key, target: "VALUE", result: "EQUAL", value: holdMarker("sticky", r.space, r.ip) }
            : { key, target: "CREATE", result: "EQUAL", create_revision: 0 },
        });
        const value = JSON.stringify(r);
        const { attachment, references } = L.entries(r);
        ops.push({ put: { key, value } }, { put: { key: attachment, value } });
        for (const ref of references) ops.push({ put: { key: ref, value: "" } });
        this.event(txn, change.kind ?? (r.static ? "static" : "allocated"), r, change.cause ?? "cni add", now);
        break;
      }
      case "release": {
        const key = L.allocation(change.space, change.ip);
        const r = change.record;
        // The secondary keys go in any case: harmless when already gone.
        if (r) {
          const { attachment, references } = L.entries(r);
          for (const ref of [attachment, ...references]) ops.push({ delete: { key: ref } });
        }
        // Released elsewhere meanwhile: nothing more to do here, no second event (rule 7).
        if (gone.has(key)) break;
        // A stale release (the address was released elsewhere meanwhile and handed out
        // again) must not delete, or cover with a hold, the newer owner's key: only the
        // value allocate wrote for this very record may go, or the key as it was read.
        guards.push({ compare: read ?? { key, target: "VALUE", result: "EQUAL", value: JSON.stringify(r) }, orAbsent: true });
        ops.push({ delete: { key } });
        if (r) this.event(txn, change.kind ?? "released", r, change.cause, now);
        break;
      }
      case "cursor":
        ops.push({ put: { key: L.cursor(change.pool), value: change.ip } });
        break;
      case "cool": {
        const c = change.cooling;
        ops.push({ put: { key: L.cooling(c.space, c.ip), value: JSON.stringify(c) } });
        // Also at a key found gone (released elsewhere, still free: the CREATE==0 guard of gone
        // keys sees to that): the hold is what this daemon's memory counts on, and what a
        // sticky pod's return swaps.
        ops.push({ put: { key: L.allocation(c.space, c.ip), value: holdMarker("cooling", c.space, c.ip) } });
        break;
      }
      case "uncool": {
        ops.push({ delete: { key: L.cooling(change.space, change.ip) } });
        // Only our hold goes: if the key holds anything else now, the commit fails and we
        // learn it; if it holds nothing (the release found it gone), there is nothing to end.
        const key = L.allocation(change.space, change.ip);
        if (gone.has(key)) break;
        guards.push({ compare: { key, target: "VALUE", result: "EQUAL", value: holdMarker("cooling", change.space, change.ip) }, orAbsent: true });
        ops.push({ delete: { key } });
        break;
      }
      case "bind": {
        const b = change.binding;
        ops.push({ put: { key: L.binding(b.space, b.pod), value: JSON.stringify(b) } });
        if (b.releasedAt !== null) ops.push({ put: { key: L.allocation(b.space, b.ip), value: holdMarker("sticky", b.space, b.ip) } });
        break;
      }
      case "unbind": {
        ops.push({ delete: { key: L.binding(change.space, change.pod) } });
        if (!change.heldIp) break;
        // The pod may have taken its address back on another node meanwhile: delete our hold only.
        const key = L.allocation(change.space, change.heldIp);
        if (gone.has(key)) break;
        guards.push({ compare: { key, target: "VALUE", result: "EQUAL", value: holdMarker("sticky", change.space, change.heldIp) }, orAbsent: true });
        ops.push({ delete: { key } });
        break;
      }
    }
  }

  /** The distinct keys a caller's changes write and the compares they add, as translate builds them. */
  private cost(changes: Change[], keys: Set<string>): { added: string[]; guards: number } {
    const txn: Txn = { guards: [], ops: [], events: 0 };
    // Event keys are numbered here too (and again by the commit): numbers only need to differ.
    for (const change of changes) this.translate({ change }, 0, new Set(), txn);
    const added = [...new Set(txn.ops.map(keyOf))].filter((k) => !keys.has(k));
    return { added, guards: txn.guards.length + (changes.some((c) => c.op === "release" && !c.record) ? 1 : 0) };
  }

  /**
   * One transaction for a batch of callers; a failed compare becomes a ConflictError naming
   * the losers. When only changes already done failed (their keys gone), the transaction is
   * built again without what they would do at those keys, on the condition that nothing was
   * created there meanwhile; each round removes at least one orAbsent guard, so it ends.
   */
  private async commitOne(pending: Pending[], now: number): Promise<void> {
    const gone = new Set<string>();
    const prepared: Prepared[] = [];
    for (const p of pending) for (const c of p.changes) prepared.push(await this.prepare(c, gone));
    for (;;) {
      const txn: Txn = { guards: [], ops: [], events: 0 };
      for (const p of prepared) this.translate(p, now, gone, txn);
      for (const key of gone) txn.guards.push({ compare: { key, target: "CREATE", result: "EQUAL", create_revision: 0 } });
      // etcd refuses a transaction that writes one key twice (two callers moving one cursor):
      // the later write is the one that stands.
      const byKey = new Map<string, Op>();
      for (const op of txn.ops) {
        byKey.delete(keyOf(op));
        byKey.set(keyOf(op), op);
      }
      const compares = txn.guards.map((g) => g.compare);
      const result = await this.client.txn(compares, [...byKey.values()], compares.map((c) => ({ range: { key: c.key } })));
      if (result.succeeded) return;
      const failed = txn.guards.flatMap((g, i) => {
        const kv = result.ranges[i]![0];
        return holds(g.compare, kv) ? [] : [{ g, kv }];
      });
      if (failed.length === 0 || failed.some((f) => !f.g.orAbsent || f.kv !== undefined)) {
        const taken = failed.flatMap((f) => (f.kv ? [parseValue(f.kv)] : [])).map((r) => ({ space: r.space, family: r.family, ip: r.ip }));
        throw new ConflictError(taken);
      }
      for (const { g } of failed) gone.add(g.compare.key);
    }
  }

  /**
   * Group commit: while one transaction is in flight, later callers queue; then as many as
   * fit etcd's limit on operations go out in one transaction. If that one fails its compares,
   * each caller is retried alone so only the real losers see a conflict.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch: Pending[] = [];
        const keys = new Set<string>();
        let guards = 0;
        while (this.queue.length > 0) {
          const cost = this.cost(this.queue[0]!.changes, keys);
          if (batch.length > 0 && (keys.size + cost.added.length > MAX_OPS || guards + cost.guards > MAX_OPS)) break;
          batch.push(this.queue.shift()!);
          for (const key of cost.added) keys.add(key);
          guards += cost.guards;
        }
        const started = performance.now();
        const now = Date.now();
        try {
          await this.commitOne(batch, now);
          this.onCommit?.((performance.now() - started) / 1000, batch.length);
          for (const p of batch) p.resolve();
        } catch (err) {
          if (batch.length === 1 || !(err instanceof ConflictError)) {
            for (const p of batch) p.reject(err);
            continue;
          }
          for (const p of batch) await this.commitOne([p], now).then(p.resolve, p.reject);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
