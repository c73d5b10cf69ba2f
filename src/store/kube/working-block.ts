/**
 * One block as a commit changes it: its committed entries, the pending changes of commits that
 * span several blocks, and the commit markers it keeps as a primary. A caller's changes are
 * judged against it one by one, exactly as the Store contract says (allocate needs a free
 * address, release removes exactly its allocation, …); an address some other commit has a
 * pending change on counts as taken until that commit is known to have happened. A change is
 * applied for good (`final`), as this commit's pending change (`pending`: the block is not the
 * commit's primary), or for good with the commit's marker (`primary`). Pure: no I/O.
 */
import type { BlockSpec, CommitMarker, PendingChange, StoredAllocation, StoredBinding, StoredHold } from "../../kube/schemas/store.ts";
import type { Block, Change, Hold } from "../store.ts";
import { familyOfIp, sameAllocation, storedAllocation, storedBinding, storedHold } from "./stored.ts";

/** What is known of another commit's pending change: it happened, it never will, or not yet known. */
export type Resolution = "committed" | "aborted" | "unknown";
export type Resolver = (txn: string, change: PendingChange) => Resolution;

export type Mode =
  | { kind: "final" }
  | { kind: "pending"; txn: string; primary: string; node: string; at: number }
  | { kind: "primary"; txn: string; node: string; at: number; secondaries: string[] };

/** The changes a block carries out (limits and cursors live elsewhere). */
export type BlockChange = Extract<Change, { op: "allocate" | "release" | "hold" | "unhold" | "bind" | "claim" | "unclaim" }> | { op: "unbind"; space: string; pod: string };

export type Judgement =
  /** applied[i]: whether change i did anything (a release found done already did not: no event). */
  | { ok: true; applied: boolean[] }
  | { ok: false; taken: { space: string; family: 4 | 6; ip: string }[]; blocks: Block[] };

/** A pending change with its removals applied before its puts: what it does to a block once it happened. */
export function applyPending<T>(base: Map<string, T>, puts: Record<string, T> | undefined, removes: string[] | undefined): void {
  for (const key of removes ?? []) base.delete(key);
  for (const [key, value] of Object.entries(puts ?? {})) base.set(key, value);
}

const touched = (c: PendingChange): string[] => [...Object.keys(c.allocations ?? {}), ...Object.keys(c.holds ?? {}), ...(c.removeAllocations ?? []), ...(c.removeHolds ?? [])];

export class WorkingBlock {
  readonly space: string;
  readonly cidr: string;
  node: string;
  readonly allocations: Map<string, StoredAllocation>;
  readonly holds: Map<string, StoredHold>;
  readonly bindings: Map<string, StoredBinding>;
  readonly pending: Map<string, PendingChange>;
  readonly commits: Map<string, CommitMarker>;
  /** Addresses with another commit's pending change on them, by that commit. */
  readonly locks = new Map<string, string>();
  /** Whether anything differs from the spec it was made from. */
  changed = false;

  /** A block from its spec: pending changes resolved as committed are applied, aborted ones dropped. */
  constructor(spec: BlockSpec, resolve: Resolver) {
    this.space = spec.space;
    this.cidr = spec.cidr;
    this.node = spec.node;
    this.allocations = new Map(Object.entries(spec.allocations ?? {}));
    this.holds = new Map(Object.entries(spec.holds ?? {}));
    this.bindings = new Map(Object.entries(spec.bindings ?? {}));
    this.commits = new Map(Object.entries(spec.commits ?? {}));
    this.pending = new Map();
    for (const [txn, change] of Object.entries(spec.pending ?? {})) {
      const state = resolve(txn, change);
      if (state === "unknown") {
        this.pending.set(txn, change);
        for (const ip of touched(change)) this.locks.set(ip, txn);
        continue;
      }
      this.changed = true;
      if (state === "aborted") continue;
      applyPending(this.allocations, change.allocations, change.removeAllocations);
      applyPending(this.holds, change.holds, change.removeHolds);
      applyPending(this.bindings, change.bindings, change.removeBindings);
    }
  }

  static empty(space: string, cidr: string): WorkingBlock {
    return new WorkingBlock({ space, cidr, node: "" }, () => "unknown");
  }

  /**
   * A copy to judge a caller's changes on. Its maps are its own; the entries in them are shared:
   * allocations, holds and bindings are only ever replaced, and a pending change is shared as it
   * was when copies went through toSpec (only its own commit's judgement adds to it).
   */
  clone(): WorkingBlock {
    const copy = WorkingBlock.empty(this.space, this.cidr);
    copy.node = this.node;
    copy.changed = this.changed;
    const sections = ["allocations", "holds", "bindings", "pending", "commits", "locks"] as const;
    for (const section of sections) for (const [key, value] of this[section] as Map<string, unknown>) (copy[section] as Map<string, unknown>).set(key, value);
    return copy;
  }

  /** Commit markers of `txns` go (their other blocks hold them no longer). */
  dropMarkers(droppable: (txn: string, marker: CommitMarker) => boolean): void {
    for (const [txn, marker] of this.commits) {
      if (!droppable(txn, marker)) continue;
      this.commits.delete(txn);
      this.changed = true;
    }
  }

  toSpec(): BlockSpec {
    const spec: BlockSpec = { space: this.space, cidr: this.cidr, node: this.node };
    if (this.allocations.size) spec.allocations = Object.fromEntries(this.allocations);
    if (this.holds.size) spec.holds = Object.fromEntries(this.holds);
    if (this.bindings.size) spec.bindings = Object.fromEntries(this.bindings);
    if (this.pending.size) spec.pending = Object.fromEntries(this.pending);
    if (this.commits.size) spec.commits = Object.fromEntries(this.commits);
    return spec;
  }

  /** Nothing in it: no claim, no entry, no commit in flight. */
  get empty(): boolean {
    return this.node === "" && this.allocations.size === 0 && this.holds.size === 0 && this.bindings.size === 0 && this.pending.size === 0 && this.commits.size === 0;
  }

  /**
   * Judges one caller's changes in order and, when all pass, applies them in `mode`; when one
   * fails nothing of the caller's is applied (the caller judges on a clone for that).
   */
  judge(changes: BlockChange[], mode: Mode): Judgement {
    const taken: { space: string; family: 4 | 6; ip: string }[] = [];
    const blocks: Block[] = [];
    const applied: boolean[] = [];
    if (mode.kind === "primary") {
      this.commits.set(mode.txn, { node: mode.node, at: mode.at, secondaries: mode.secondaries });
      this.changed = true;
    }
    const txn = mode.kind === "pending" ? mode.txn : undefined;
    for (const change of changes) {
      const result = this.one(change, mode);
      if (result === "conflict") {
        if (change.op === "claim" || change.op === "unclaim") blocks.push({ space: this.space, cidr: this.cidr, node: this.node });
        else if (change.op !== "bind" && change.op !== "unbind") {
          const ip = change.op === "allocate" || change.op === "release" ? change.record.ip : change.hold.ip;
          taken.push({ space: this.space, family: familyOfIp(ip), ip });
        }
      } else applied.push(result === "applied");
      if (result !== "noop" && result !== "conflict" && txn) this.lockAll(change, txn);
    }
    if (taken.length || blocks.length) return { ok: false, taken, blocks };
    return { ok: true, applied };
  }

  private lockAll(change: BlockChange, txn: string): void {
    if (change.op === "allocate" || change.op === "release") this.locks.set(change.record.ip, txn);
    if (change.op === "hold" || change.op === "unhold") this.locks.set(change.hold.ip, txn);
  }

  /** The allocation and hold at an address as a commit sees it: its own pending changes count. */
  private at(ip: string, mode: Mode): { allocation?: StoredAllocation; hold?: StoredHold; locked: boolean } {
    const lock = this.locks.get(ip);
    const own = mode.kind === "pending" ? this.pending.get(mode.txn) : undefined;
    if (lock !== undefined && lock !== (mode.kind === "pending" ? mode.txn : undefined)) return { locked: true };
    let allocation = this.allocations.get(ip);
    let hold = this.holds.get(ip);
    if (own) {
      if (own.removeAllocations?.includes(ip)) allocation = undefined;
      if (own.allocations?.[ip]) allocation = own.allocations[ip];
      if (own.removeHolds?.includes(ip)) hold = undefined;
      if (own.holds?.[ip]) hold = own.holds[ip];
    }
    return { allocation, hold, locked: false };
  }

  private one(change: BlockChange, mode: Mode): "applied" | "noop" | "conflict" {
    switch (change.op) {
      case "allocate": {
        const now = this.at(change.record.ip, mode);
        if (now.locked || now.allocation || now.hold) return "conflict";
        this.set("allocations", change.record.ip, storedAllocation(change.record), mode);
        return "applied";
      }
      case "release": {
        const now = this.at(change.record.ip, mode);
        if (now.locked) return "conflict";
        if (!now.allocation && !now.hold) return "noop";
        if (!now.allocation || !sameAllocation(now.allocation, storedAllocation(change.record))) return "conflict";
        this.remove("allocations", change.record.ip, mode);
        return "applied";
      }
      case "hold":
        return this.hold(change.hold, mode);
      case "unhold": {
        const now = this.at(change.hold.ip, mode);
        if (now.locked) return "conflict";
        if (!now.allocation && !now.hold) return "noop";
        if (!now.hold || now.hold.kind !== change.hold.kind) return "conflict";
        this.remove("holds", change.hold.ip, mode);
        return "applied";
      }
      case "bind":
        this.set("bindings", change.binding.pod, storedBinding(change.binding), mode);
        return "applied";
      case "unbind":
        if (!this.bindings.has(change.pod) && !(mode.kind === "pending" && this.pending.get(mode.txn)?.bindings?.[change.pod])) return "noop";
        this.remove("bindings", change.pod, mode);
        return "applied";
      default:
        return this.claim(change, mode);
    }
  }

  private hold(hold: Hold, mode: Mode): "applied" | "noop" | "conflict" {
    const now = this.at(hold.ip, mode);
    if (now.locked || now.allocation) return "conflict";
    if (now.hold) return now.hold.kind === hold.kind ? "noop" : "conflict";
    this.set("holds", hold.ip, storedHold(hold), mode);
    return "applied";
  }

  private claim(change: Extract<BlockChange, { op: "claim" | "unclaim" }>, mode: Mode): "applied" | "noop" | "conflict" {
    if (mode.kind === "pending") throw new Error(`a block claim cannot be part of a commit that spans blocks (${this.cidr})`);
    const wanted = change.op === "claim" ? change.block.node : "";
    if (this.node === wanted) return "noop";
    if (change.op === "claim" ? this.node !== "" : this.node !== change.block.node) return "conflict";
    this.node = wanted;
    this.changed = true;
    return "applied";
  }

  private set<K extends "allocations" | "holds" | "bindings">(section: K, key: string, value: K extends "allocations" ? StoredAllocation : K extends "holds" ? StoredHold : StoredBinding, mode: Mode): void {
    this.changed = true;
    if (mode.kind !== "pending") {
      (this[section] as Map<string, typeof value>).set(key, value);
      return;
    }
    const change = this.pendingOf(mode);
    change[section] = { ...(change[section] ?? {}), [key]: value } as never;
  }

  private remove(section: "allocations" | "holds" | "bindings", key: string, mode: Mode): void {
    this.changed = true;
    if (mode.kind !== "pending") {
      this[section].delete(key);
      return;
    }
    const change = this.pendingOf(mode);
    const puts = change[section] as Record<string, unknown> | undefined;
    if (puts && key in puts) delete puts[key];
    const removes = section === "allocations" ? "removeAllocations" : section === "holds" ? "removeHolds" : "removeBindings";
    if ((this[section] as Map<string, unknown>).has(key) && !change[removes]?.includes(key)) change[removes] = [...(change[removes] ?? []), key];
  }

  private pendingOf(mode: Extract<Mode, { kind: "pending" }>): PendingChange {
    let change = this.pending.get(mode.txn);
    if (!change) this.pending.set(mode.txn, (change = { primary: mode.primary, node: mode.node, at: mode.at }));
    return change;
  }
}
