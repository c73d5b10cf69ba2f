/**
 * Commits on the Kubernetes-API store. Concurrent callers of one daemon share writes (group
 * commit): while one batch is in flight later callers queue, then the whole queue goes out as
 * one write per object it touches — a node's ADDs land in its own blocks, so a batch is
 * usually one write. A caller whose changes all land in one object is applied there for good.
 * One whose changes span objects (a dual-stack pod, a limited namespace's usage) is a
 * two-stage commit: its changes are written as pending into every object but its primary
 * block (stage 1), then into the primary for good with a commit marker (stage 2), whose write
 * is the moment the commit happens; a failure before it leaves only pending changes nobody
 * reads as done, which this daemon removes. Events and cursors go to the local database once
 * the API server has the commit (just after its callers are answered: LocalDb.record).
 */
import { ConflictError, type Change } from "../store.ts";
import type { HistoryEvent } from "../records.ts";
import type { BlockCache } from "./cache.ts";
import type { LocalDb, NewEvent } from "./local-db.ts";
import type { BlockPrefixes } from "./names.ts";
import type { BlockEntry, ObjectWriter, UsageEntry } from "./objects.ts";
import { translate, type Translated } from "./parts.ts";
import type { OwnTxns } from "./txns.ts";
import type { Mode } from "./working-block.ts";

interface Caller {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
  translated?: Translated;
  txn?: { id: string; primary: string; secondaries: string[] };
  error?: unknown;
  /** Its primary's write failed in a way that may have applied: whether it happened is found out later. */
  doubt?: boolean;
  /** Per change: whether it did anything (what gets an event). */
  applied: boolean[];
}

/** Two refusals of one caller in different objects: one ConflictError naming both. */
function merged(a: unknown, b: unknown): unknown {
  if (a instanceof ConflictError && b instanceof ConflictError) return new ConflictError([...a.taken, ...b.taken], [...a.blocks, ...b.blocks]);
  return a ?? b;
}

export class KubeCommitter {
  private queue: Caller[] = [];
  private flushing = false;
  onCommit: ((seconds: number, callers: number) => void) | undefined;
  /** Runs when a batch leaves settled commits behind (see KubeStore.tidy). */
  onLeftovers: (() => void) | undefined;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly cache: BlockCache,
    private readonly txns: OwnTxns,
    private readonly local: LocalDb,
    private readonly prefixes: BlockPrefixes,
    private readonly node: string,
  ) {}

  get idle(): boolean {
    return !this.flushing && this.queue.length === 0;
  }

  commit(changes: Change[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject, applied: changes.map(() => false) });
      if (!this.flushing) void this.flush();
    });
  }

  /** Runs `work` with no batch in flight (tidying shares the objects batches write). */
  async exclusive(work: () => Promise<void>): Promise<void> {
    while (this.flushing) await Bun.sleep(2);
    this.flushing = true;
    try {
      await work();
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        const started = performance.now();
        const done = await this.run(batch);
        if (done > 0) this.onCommit?.((performance.now() - started) / 1000, done);
      }
    } finally {
      this.flushing = false;
    }
    if (this.txns.size > 0) this.onLeftovers?.();
  }

  /**
   * Gives each caller that spans objects its primary: the first of its blocks not written in
   * stage 1 by an earlier caller; the others become stage-1 objects. A caller that cannot get
   * one (its blocks play the other part for earlier callers) waits for the next batch.
   */
  private roles(batch: Caller[]): { callers: Caller[]; primaries: Set<string> } {
    const roles = new Map<string, "pending" | "primary">();
    const callers: Caller[] = [];
    const deferred: Caller[] = [];
    for (const c of batch) {
      const parts = [...c.translated!.parts.values()];
      if (parts.length > 1) {
        const primary = parts.filter((p) => p.kind === "block").map((p) => p.name).sort().find((n) => roles.get(n) !== "pending");
        const secondaries = parts.map((p) => p.name).filter((n) => n !== primary);
        if (!primary || secondaries.some((n) => roles.get(n) === "primary")) {
          deferred.push(c);
          continue;
        }
        roles.set(primary, "primary");
        for (const n of secondaries) roles.set(n, "pending");
        c.txn = { id: this.txns.begin(primary, secondaries), primary, secondaries };
      }
      callers.push(c);
    }
    this.queue.unshift(...deferred);
    return { callers, primaries: new Set([...roles].flatMap(([n, r]) => (r === "primary" ? [n] : []))) };
  }

  /** One batch: returns how many callers it committed. */
  private async run(batch: Caller[]): Promise<number> {
    const now = Date.now();
    for (const c of batch) {
      try {
        c.translated = translate(c.changes, this.cache, this.prefixes);
      } catch (err) {
        c.error = err;
      }
    }
    const { callers, primaries } = this.roles(batch.filter((c) => !c.error));
    for (const c of batch) if (c.error) c.reject(c.error);
    await this.stage(callers, (name) => !primaries.has(name), now);
    await this.stage(callers.filter((c) => !c.error), (name) => primaries.has(name), now);
    return this.finish(callers, now);
  }

  private modeOf(c: Caller, name: string, now: number): Mode {
    if (!c.txn) return { kind: "final" };
    if (c.txn.primary === name) return { kind: "primary", txn: c.txn.id, node: this.node, at: now, secondaries: c.txn.secondaries };
    return { kind: "pending", txn: c.txn.id, primary: c.txn.primary, node: this.node, at: now };
  }

  /** Writes every object of the stage, each in parallel with the others, and notes each caller's outcome. */
  private async stage(callers: Caller[], inStage: (name: string) => boolean, now: number): Promise<void> {
    const blocks = new Map<string, { space: string; cidr: string; entries: (BlockEntry & { caller: Caller })[] }>();
    const usages = new Map<string, (UsageEntry & { caller: Caller })[]>();
    for (const c of callers) {
      for (const part of c.translated!.parts.values()) {
        if (!inStage(part.name)) continue;
        if (part.kind === "usage") {
          const list = usages.get(part.name) ?? [];
          list.push({ part, caller: c, txn: { id: c.txn!.id, primary: c.txn!.primary, node: this.node, at: now } });
          usages.set(part.name, list);
          continue;
        }
        const block = blocks.get(part.name) ?? { space: part.space, cidr: part.cidr, entries: [] };
        block.entries.push({ part, mode: this.modeOf(c, part.name, now), caller: c });
        blocks.set(part.name, block);
      }
    }
    const failAll = (entries: { caller: Caller; mode?: Mode }[], err: unknown, name: string) => {
      for (const e of entries) {
        e.caller.error ??= err;
        if (e.mode?.kind === "primary" && this.cache.unsure.has(name)) e.caller.doubt = true;
      }
    };
    await Promise.all([
      ...[...blocks].map(([name, { space, cidr, entries }]) =>
        this.writer.writeBlock(name, space, cidr, entries).then(() => {
          for (const e of entries) {
            const r = e.result!;
            if (!r.ok) e.caller.error = merged(e.caller.error, new ConflictError(r.taken, r.blocks));
            else r.applied.forEach((done, i) => e.part.indexes[i]! >= 0 && done && (e.caller.applied[e.part.indexes[i]!] = true));
          }
        }, (err) => failAll(entries, err, name)),
      ),
      ...[...usages].map(([name, entries]) =>
        this.writer.writeUsage(name, entries).then(() => {
          for (const e of entries) if (e.result) e.caller.error ??= e.result;
        }, (err) => failAll(entries, err, name)),
      ),
    ]);
  }

  /** Settles each caller: events and cursors of the committed into the local database, then the answers. */
  private finish(callers: Caller[], now: number): number {
    const events: NewEvent[] = [];
    const cursors: [string, string][] = [];
    const committed = callers.filter((c) => !c.error);
    for (const c of callers) {
      if (!c.txn) continue;
      // A primary write that may have applied leaves the commit's fate to be found out (KubeStore.tidy).
      if (c.doubt) this.txns.doubt(c.txn.id);
      else this.txns.end(c.txn.id, !c.error);
    }
    for (const c of committed) {
      c.changes.forEach((change, i) => {
        const event = c.applied[i] ? eventOf(change, now) : null;
        if (event) events.push(event);
      });
      cursors.push(...c.translated!.cursors);
    }
    this.local.record(events, cursors);
    for (const c of callers) (c.error ? c.reject(c.error) : c.resolve());
    return committed.length;
  }
}

/** The history event a change that did something writes, if any. */
function eventOf(change: Change, at: number): NewEvent | null {
  const base = { at, containerID: null, ifname: null, podNamespace: null, podName: null, podUid: null };
  switch (change.op) {
    case "allocate":
    case "release": {
      const r = change.record;
      const kind: HistoryEvent["kind"] = change.op === "allocate" ? (change.kind ?? (r.static ? "static" : "allocated")) : (change.kind ?? "released");
      const cause = change.op === "allocate" ? (change.cause ?? "cni add") : change.cause;
      return { at, kind, network: r.network, ip: r.ip, containerID: r.containerID, ifname: r.ifname, podNamespace: r.podNamespace, podName: r.podName, podUid: r.podUid, cause };
    }
    case "hold":
    case "unhold":
      return change.event ? { ...base, kind: change.event.kind, network: "", ip: change.hold.ip, cause: change.event.cause } : null;
    default:
      return null;
  }
}
