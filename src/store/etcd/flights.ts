/**
 * Group commit on etcd, pipelined. Callers queue; a batch takes as many as fit etcd's limit on
 * operations (MAX_OPS) and goes out as one transaction (a flight), and up to FLIGHTS batches
 * fly at once. One flight at a time was the bottleneck: a batch holds about 17 ADDs (each
 * writes 6-9 keys), a commit's round trip is 20-45 ms here, so a daemon stayed under ~400
 * ADDs/s with etcd's CPU half idle; with flights overlapping, etcd also shares its raft rounds
 * and fsyncs between them and spends less CPU per ADD (make bench-cluster).
 *
 * What a single flight gave for free is kept by two rules:
 * - No two callers writing one key (an address, its secondary keys, a block, a binding) are in
 *   the air at once, in one batch or in two: the guards of each would judge the state before
 *   the other. A caller whose keys are in flight waits at the head of the queue. (A space's
 *   sp/ key is the exception: an empty value no guard reads, written by whoever is first.)
 * - Cursors (cur/ keys) move in the order the plans were made: only one flight at a time, the
 *   carrier, writes them. A batch that flies beside the carrier leaves its cursor moves to the
 *   next carrier, and its callers are answered only once that carrier is durable too.
 */
import { AttachmentHeld, type Change, ConflictError } from "../store.ts";
import { MAX_OPS } from "./commit.ts";

export interface Pending {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
  /** Its cost, worked out once (it waits in the queue through several looks). */
  cost?: Cost;
}

export type CursorMove = Extract<Change, { op: "cursor" }>;

/** What a batch writes and how many compares it adds, as the committer builds it. */
export interface Cost {
  keys: string[];
  guards: number;
  limited: boolean;
}

/** The transaction side (commit.ts): one batch as one transaction, its cursor moves written or left out. */
export interface Transactions {
  cost(changes: Change[]): Cost;
  /** Keys several callers may write at once, in one batch or in flights side by side (cursors, the sp/ registry). */
  unguarded(key: string): boolean;
  commitOne(pending: Pending[], now: number, cursors: { write: boolean; extra: CursorMove[] }): Promise<void>;
}

/**
 * Batches in the air at once per daemon. With 64 clients a daemon seldom queues more than three
 * full batches behind the one in the air; of 1, 2 and 4, 4 measured best on the bench's cluster.
 */
export const FLIGHTS = 4;

/** A promise settled from outside, that never counts as unhandled. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

interface Flight {
  batch: Pending[];
  /** Its keys other than cursors: none of them may be in another flight. */
  keys: string[];
  /** The carrier: writes its own cursor moves and those left to it (extra). */
  carrier: boolean;
  extra: CursorMove[];
  /** Carrier: settled when the cursor moves it carries for others are durable. */
  carried?: ReturnType<typeof deferred>;
  /** Beside a carrier: what its callers wait for before they are answered. */
  cursorsDurable?: Promise<void>;
}

export class GroupCommit {
  private readonly queue: Pending[] = [];
  private flights = 0;
  private carrying = false;
  private readonly inFlight = new Set<string>();
  /** Cursor moves of batches that flew beside a carrier, newest per key, for the next carrier. */
  private readonly cursorsDue = new Map<string, CursorMove>();
  private nextCarrier: ReturnType<typeof deferred> | undefined;
  private pumpScheduled = false;
  onCommit: ((seconds: number, callers: number) => void) | undefined;

  constructor(private readonly txns: Transactions) {}

  get idle(): boolean {
    return this.flights === 0 && this.queue.length === 0 && this.cursorsDue.size === 0 && !this.pumpScheduled;
  }

  commit(changes: Change[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject });
      if (this.flights === 0) return this.pump();
      // With flights in the air, a new flight waits for a full batch: looking for one once per
      // turn of the event loop, not once per caller, walks the queue far less (callers come in
      // bursts; a look per caller was 5% of a daemon's CPU under load).
      if (!this.pumpScheduled) {
        this.pumpScheduled = true;
        setImmediate(() => {
          this.pumpScheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Starts flights while there is room and something to send. */
  private pump(): void {
    while (this.flights < FLIGHTS) {
      const flight = this.take();
      if (!flight) return;
      void this.fly(flight);
    }
  }

  /**
   * The next batch from the head of the queue: as many callers as fit etcd's limits, never two
   * writing one key (a cursor they may share), never one whose keys are in flight. A caller
   * counted against a namespace limit goes alone: its LimitError is its own. With nothing to
   * send but cursor moves left to a carrier, a carrier of those alone. While a flight is in the
   * air, a batch that is not full waits for it to land (and for more callers): a flight costs
   * etcd about as much as ten of an ADD's keys, so only a queue longer than one batch adds one.
   */
  private take(): Flight | null {
    const carrier = !this.carrying;
    const extra = carrier ? [...this.cursorsDue.values()] : [];
    // The batch's one ev/ key and the cursor moves it carries for others come first.
    const budget = MAX_OPS - 1 - extra.length;
    const batch: Pending[] = [];
    const keys = new Set<string>();
    const guarded = new Set<string>();
    let guards = 0;
    /** Whether the batch ended for want of room (or a clash), not of callers. */
    let full = false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const cost = (head.cost ??= this.txns.cost(head.changes));
      const added = cost.keys.filter((k) => !keys.has(k));
      const clash = cost.keys.some((k) => guarded.has(k) || this.inFlight.has(k));
      full = clash || cost.limited || keys.size + added.length > budget || guards + cost.guards > MAX_OPS;
      if (full && (batch.length > 0 || clash)) break;
      batch.push(this.queue.shift()!);
      for (const key of cost.keys) {
        keys.add(key);
        if (!this.txns.unguarded(key)) guarded.add(key);
      }
      guards += cost.guards;
      if (cost.limited) break;
    }
    // Cursor moves left to a carrier go as soon as one may fly: their callers wait for them.
    const due = carrier && extra.length > 0;
    if ((batch.length === 0 && !due) || (this.flights > 0 && !full && !due)) {
      this.queue.unshift(...batch);
      return null;
    }
    const flight: Flight = { batch, keys: [...guarded], carrier, extra };
    if (carrier) {
      this.carrying = true;
      this.cursorsDue.clear();
      flight.carried = this.nextCarrier;
      this.nextCarrier = undefined;
    } else {
      const moves = batch.flatMap((p) => p.changes.filter((c): c is CursorMove => c.op === "cursor"));
      if (moves.length > 0) {
        // Later in the queue is later planned: the last move of a cursor is the one that stands.
        for (const move of moves) this.cursorsDue.set(move.rangeSet, move);
        this.nextCarrier ??= deferred();
        flight.cursorsDurable = this.nextCarrier.promise;
      }
    }
    for (const key of flight.keys) this.inFlight.add(key);
    return flight;
  }

  private async fly(flight: Flight): Promise<void> {
    this.flights++;
    try {
      await this.send(flight);
    } finally {
      this.flights--;
      for (const key of flight.keys) this.inFlight.delete(key);
      if (flight.carrier) this.carrying = false;
      this.pump();
    }
  }

  /**
   * One flight's transaction. If a shared transaction fails its compares, each caller is
   * retried alone so only the real losers see a conflict; the cursor moves it carried for
   * others are then written by themselves.
   */
  private async send(flight: Flight): Promise<void> {
    const { batch, carrier, extra } = flight;
    const started = performance.now();
    const now = Date.now();
    const answer = (p: Pending) => (flight.cursorsDurable ? flight.cursorsDurable.then(p.resolve, p.reject) : p.resolve());
    let carried = extra.length === 0;
    let failure: unknown;
    try {
      await this.txns.commitOne(batch, now, { write: carrier, extra });
      carried = true;
      if (batch.length > 0) this.onCommit?.((performance.now() - started) / 1000, batch.length);
      for (const p of batch) answer(p);
    } catch (err) {
      failure = err;
      if (batch.length <= 1 || !(err instanceof ConflictError || err instanceof AttachmentHeld)) for (const p of batch) p.reject(err);
      else for (const p of batch) await this.txns.commitOne([p], now, { write: carrier, extra: [] }).then(() => answer(p), p.reject);
      if (!carried && (err instanceof ConflictError || err instanceof AttachmentHeld)) {
        try {
          await this.txns.commitOne([], now, { write: true, extra });
          carried = true;
        } catch (again) {
          failure = again;
        }
      }
    }
    if (carried) flight.carried?.resolve();
    else flight.carried?.reject(failure);
  }
}
