/**
 * The engine's memory of the store: per address space and family the set of taken addresses
 * (allocated or held), the range sets' cursors, the holds and sticky bindings, the blocks this
 * node owns, and how many allocations each space has. Planners read it and never write it;
 * the apply path writes it, and only as a plan says (see plan.ts). A planner that took an
 * address reserves it at once, so between a plan and its commit no other plan can take it.
 */
import { type Family, parseIp } from "../ipam/address.ts";
import { ExtentSet, type TakenAddresses } from "../ipam/freespace.ts";
import type { Binding, Block, Hold } from "../store/store.ts";
import type { Address, Plan } from "./plan.ts";

const setKey = (space: string, family: Family) => `${space}/${family}`;
const spaceOfSetKey = (key: string): { space: string; family: Family } => {
  const slash = key.lastIndexOf("/");
  return { space: key.slice(0, slash), family: Number(key.slice(slash + 1)) as Family };
};
const holdKey = (space: string, ip: string) => `${space}\0${ip}`;
const bindingKey = (space: string, pod: string) => `${space}\0${pod}`;
const queueKey = (space: string, kind: Hold["kind"]) => `${space}\0${kind}`;

/** What the engine reads at start (or for one space it re-reads). */
export interface StoreSnapshot {
  taken: { space: string; family: Family; values: (bigint | number)[]; allocated: number }[];
  holds: Hold[];
  bindings: Binding[];
}

/** The read side planners get: nothing here changes memory. */
export interface StateView {
  takenSet(space: string, family: Family): TakenAddresses;
  cursor(rangeSet: string): bigint | null;
  hold(space: string, ip: string): Hold | undefined;
  binding(space: string, pod: string): Binding | undefined;
  /** Holds of a space and kind, oldest first, that no plan in flight is ending. */
  queued(space: string, kind: Hold["kind"]): Iterable<Hold>;
  ownedBlocks(space: string): ReadonlyMap<bigint, string>;
}

export class AddressState implements StateView {
  private taken = new Map<string, ExtentSet>();
  private readonly cursors = new Map<string, bigint>();
  private readonly holds = new Map<string, Hold>();
  /** Holds per space and kind in the order they began (entries may be stale: ended since). */
  private readonly queues = new Map<string, Hold[]>();
  private readonly bindings = new Map<string, Binding>();
  private readonly owned = new Map<string, Map<bigint, string>>();
  private blockChanges = 0;
  /** Addresses taken by plans still committing, by space and family: a re-read of their space keeps them. */
  private readonly reserved = new Map<string, Set<bigint>>();
  /** Holds being ended by plans still committing. */
  private readonly ending = new Set<string>();
  private readonly counts = new Map<string, number>();

  /** Live allocations (holds not counted). */
  get allocations(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  /** Every space and family memory knows taken addresses of. */
  *spaces(): Generator<{ space: string; family: Family; taken: ExtentSet }> {
    for (const [key, taken] of this.taken) if (taken.size > 0) yield { ...spaceOfSetKey(key), taken };
  }

  takenSet(space: string, family: Family): ExtentSet {
    const key = setKey(space, family);
    let set = this.taken.get(key);
    if (!set) this.taken.set(key, (set = new ExtentSet()));
    return set;
  }

  cursor(rangeSet: string): bigint | null {
    return this.cursors.get(rangeSet) ?? null;
  }

  hold(space: string, ip: string): Hold | undefined {
    return this.holds.get(holdKey(space, ip));
  }

  binding(space: string, pod: string): Binding | undefined {
    return this.bindings.get(bindingKey(space, pod));
  }

  *queued(space: string, kind: Hold["kind"]): Iterable<Hold> {
    for (const h of this.queues.get(queueKey(space, kind)) ?? []) {
      const key = holdKey(h.space, h.ip);
      if (this.holds.get(key) === h && !this.ending.has(key)) yield h;
    }
  }

  private reservedIn(a: Address): Set<bigint> {
    const key = setKey(a.space, a.family);
    let values = this.reserved.get(key);
    if (!values) this.reserved.set(key, (values = new Set()));
    return values;
  }

  private unreserve(a: Address): void {
    this.reserved.get(setKey(a.space, a.family))?.delete(a.value);
  }

  /** Every hold now in force (for reports). */
  allHolds(): IterableIterator<Hold> {
    return this.holds.values();
  }

  /** Bumped whenever this node's blocks change: what was worked out from them is stale. */
  get blocksEpoch(): number {
    return this.blockChanges;
  }

  ownedBlocks(space: string): Map<bigint, string> {
    let m = this.owned.get(space);
    if (!m) this.owned.set(space, (m = new Map()));
    return m;
  }

  /** Loads what the store holds: everything at start, or one space again (keeping what plans in flight reserved). */
  load(snapshot: StoreSnapshot, space?: string): void {
    if (space !== undefined) {
      for (const family of [4, 6] as const) this.taken.delete(setKey(space, family));
      this.counts.delete(space);
      for (const [key, h] of this.holds) if (h.space === space) this.holds.delete(key);
      for (const key of this.queues.keys()) if (key.startsWith(`${space}\0`)) this.queues.delete(key);
    }
    for (const { space: s, family, values, allocated } of snapshot.taken) {
      this.takenSet(s, family).addAll(values);
      this.counts.set(s, (this.counts.get(s) ?? 0) + allocated);
    }
    for (const h of snapshot.holds) this.addHold(h);
    for (const b of snapshot.bindings) this.bindings.set(bindingKey(b.space, b.pod), b);
    for (const [key, values] of this.reserved) {
      const { space: s, family } = spaceOfSetKey(key);
      if (space === undefined || s === space) for (const value of values) this.takenSet(s, family).add(value);
    }
  }

  loadCursors(cursors: Map<string, string>): void {
    for (const [rangeSet, ip] of cursors) {
      const parsed = parseIp(ip);
      if (parsed) this.cursors.set(rangeSet, parsed.value);
    }
  }

  loadBlocks(blocks: Block[], node: string, parse: (cidr: string) => bigint | null): void {
    this.blockChanges++;
    for (const b of blocks) {
      const start = b.node === node ? parse(b.cidr) : null;
      if (start !== null) this.ownedBlocks(b.space).set(start, b.cidr);
    }
  }

  private addHold(h: Hold): void {
    const parsed = parseIp(h.ip);
    if (parsed) this.takenSet(h.space, h.family).add(parsed.value);
    this.holds.set(holdKey(h.space, h.ip), h);
    const key = queueKey(h.space, h.kind);
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    q.push(h);
  }

  /** Another daemon holds this address (a lost race): taken, and counted as an allocation. */
  learn(space: string, family: Family, ip: string): void {
    const parsed = parseIp(ip);
    if (parsed && this.takenSet(space, family).add(parsed.value)) this.counts.set(space, (this.counts.get(space) ?? 0) + 1);
  }

  /** What the store says a pod's binding is (shared stores: another node may have changed it). */
  learnBinding(space: string, pod: string, binding: Binding | undefined): void {
    if (binding) this.bindings.set(bindingKey(space, pod), binding);
    else this.bindings.delete(bindingKey(space, pod));
  }

  /** Every binding to an address, in any space. */
  bindingsAt(ip: string): Binding[] {
    return [...this.bindings.values()].filter((b) => b.ip === ip);
  }

  /** The spaces where a hold keeps an address. */
  spacesHolding(ip: string): string[] {
    return [...this.holds.values()].filter((h) => h.ip === ip).map((h) => h.space);
  }

  /** A hold the store no longer has (taken over elsewhere): gone from memory, its address stays taken. */
  dropHold(h: Hold): void {
    const key = holdKey(h.space, h.ip);
    this.ending.delete(key);
    if (this.holds.get(key) === h) this.holds.delete(key);
  }

  /**
   * Applies what a plan does at once; returns how to take it back. Throws (changing nothing)
   * if a take is taken already: a planner works from this very memory, so that is a bug.
   */
  reserve(plan: Plan): () => void {
    for (const t of plan.takes) if (this.takenSet(t.space, t.family).has(t.value)) throw new Error(`planned to take ${t.space}/${t.value}, which is taken`);
    for (const t of plan.takes) {
      this.takenSet(t.space, t.family).add(t.value);
      this.reservedIn(t).add(t.value);
    }
    for (const h of plan.ends) this.ending.add(holdKey(h.space, h.ip));
    const before = plan.binds.map(({ space, pod }) => [space, pod, this.binding(space, pod)] as const);
    for (const { space, pod, to } of plan.binds) {
      if (to) this.bindings.set(bindingKey(space, pod), to);
      else this.bindings.delete(bindingKey(space, pod));
    }
    return () => {
      for (const t of plan.takes) {
        this.unreserve(t);
        this.takenSet(t.space, t.family).delete(t.value);
      }
      for (const h of plan.ends) this.ending.delete(holdKey(h.space, h.ip));
      for (const [space, pod, b] of before) {
        if (b) this.bindings.set(bindingKey(space, pod), b);
        else this.bindings.delete(bindingKey(space, pod));
      }
    };
  }

  /** The plan's changes are durable: memory becomes what the store now holds. */
  settle(plan: Plan): void {
    for (const t of plan.takes) this.unreserve(t);
    for (const h of plan.ends) this.dropHold(h);
    for (const f of plan.frees) this.takenSet(f.space, f.family).delete(f.value);
    for (const h of plan.holds) this.addHold(h);
    for (const [rangeSet, value] of plan.cursors) this.cursors.set(rangeSet, value);
    if (plan.claims.length + plan.unclaims.length > 0) this.blockChanges++;
    for (const b of plan.claims) this.ownedBlocks(b.space).set(parseIp(b.cidr.split("/")[0]!)!.value, b.cidr);
    for (const b of plan.unclaims) this.ownedBlocks(b.space).delete(parseIp(b.cidr.split("/")[0]!)!.value);
    for (const r of plan.allocated) this.counts.set(r.space, (this.counts.get(r.space) ?? 0) + 1);
    for (const { record: r } of plan.released) this.counts.set(r.space, (this.counts.get(r.space) ?? 0) - 1);
  }

  /**
   * The commit failed but may have applied (a shared store's timeout): memory keeps every
   * address either outcome leaves taken (takes stay, frees wait) until the space is re-read.
   */
  settleUnsure(plan: Plan): void {
    for (const t of plan.takes) this.unreserve(t);
    for (const h of plan.ends) this.ending.delete(holdKey(h.space, h.ip));
    for (const h of plan.holds) this.addHold(h);
  }
}
