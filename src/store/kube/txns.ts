/**
 * This daemon's commits that span several blocks, from their pending changes to the moment no
 * object mentions them any more. Ids carry a per-process incarnation, so a restarted daemon
 * knows which pending changes of its node a dead process left: those are settled at start —
 * done if their primary carries the marker (the dead process committed), else abandoned.
 */
import type { Resolution } from "./working-block.ts";

interface OwnTxn {
  /** doubt: its primary's write failed in a way that may have applied; found out by reading it. */
  state: "inflight" | "doubt" | "committed" | "aborted";
  primary: string;
  /** Blocks (and usage objects) that may still hold the commit as pending. */
  unsettled: Set<string>;
}

export class OwnTxns {
  readonly incarnation = crypto.randomUUID().slice(0, 8);
  private seq = 0;
  private readonly txns = new Map<string, OwnTxn>();

  begin(primary: string, secondaries: string[]): string {
    const txn = `${this.incarnation}-${(this.seq++).toString(36)}`;
    this.txns.set(txn, { state: "inflight", primary, unsettled: new Set(secondaries) });
    return txn;
  }

  /** Records a commit found at start, left by a dead process of this node. */
  adopt(txn: string, primary: string, committed: boolean, unsettled: string[]): void {
    const known = this.txns.get(txn);
    if (known) for (const name of unsettled) known.unsettled.add(name);
    else this.txns.set(txn, { state: committed ? "committed" : "aborted", primary, unsettled: new Set(unsettled) });
  }

  end(txn: string, committed: boolean): void {
    const t = this.txns.get(txn);
    if (t) t.state = committed ? "committed" : "aborted";
  }

  doubt(txn: string): void {
    const t = this.txns.get(txn);
    if (t) t.state = "doubt";
  }

  /** Commits whose fate is to be found out, with their primaries. */
  doubts(): [txn: string, primary: string][] {
    return [...this.txns].flatMap(([txn, t]) => (t.state === "doubt" ? [[txn, t.primary] as [string, string]] : []));
  }

  /** Whether an id is a commit of this process. */
  mine(txn: string): boolean {
    return txn.startsWith(`${this.incarnation}-`);
  }

  readonly resolution = (txn: string): Resolution => {
    const t = this.txns.get(txn);
    return t === undefined || t.state === "inflight" || t.state === "doubt" ? "unknown" : t.state;
  };

  /** An object was written holding the pending changes of `pending` only: every other settled commit is settled there. */
  written(name: string, pending: Set<string>): void {
    for (const [txn, t] of this.txns) {
      if (t.state === "inflight" || t.state === "doubt" || pending.has(txn) || !t.unsettled.delete(name)) continue;
      if (t.unsettled.size === 0 && t.state === "aborted") this.txns.delete(txn);
    }
  }

  /** A committed commit whose marker may go: no other object holds it as pending. */
  markerDroppable(txn: string): boolean {
    const t = this.txns.get(txn);
    return t !== undefined && t.state === "committed" && t.unsettled.size === 0;
  }

  /** The marker is gone: the commit is forgotten. */
  forget(txn: string): void {
    this.txns.delete(txn);
  }

  /** What is left to write: objects still holding settled commits as pending, and primaries whose markers may go. */
  leftovers(): { unsettled: Set<string>; primaries: Set<string> } {
    const unsettled = new Set<string>();
    const primaries = new Set<string>();
    for (const t of this.txns.values()) {
      if (t.state === "inflight" || t.state === "doubt") continue;
      for (const name of t.unsettled) unsettled.add(name);
      if (t.state === "committed" && t.unsettled.size === 0) primaries.add(t.primary);
    }
    return { unsettled, primaries };
  }

  get size(): number {
    return this.txns.size;
  }
}
