/**
 * The daemon's in-memory index of taken addresses: one extent set per space and family,
 * the cursor of each range set, and the addresses picked by requests whose commit is still
 * under way. It is rebuilt from the store at start-up (and, with a shared store, whenever
 * the daemon has reason to think it is stale).
 */
import { type Family, parseIp } from "../ipam/address.ts";
import { ExtentSet } from "../ipam/freespace.ts";
import type { Store } from "../store/store.ts";
import type { ReuseState } from "./reuse.ts";

export class AddressIndex {
  private taken = new Map<string, ExtentSet>();
  readonly cursors = new Map<string, bigint>();
  /** Addresses marked by requests still committing: a rebuild must keep them taken. */
  private readonly inflight = new Set<string>();
  /** Live allocations (not counting addresses held only for reuse). */
  count = 0;

  set(space: string, family: Family): ExtentSet {
    const key = `${space}/${family}`;
    let set = this.taken.get(key);
    if (!set) this.taken.set(key, (set = new ExtentSet()));
    return set;
  }

  /** Marks an address picked by a request that has yet to commit; false if it was taken. */
  pick(space: string, family: Family, value: bigint): boolean {
    if (!this.set(space, family).add(value)) return false;
    this.inflight.add(`${space}\0${family}\0${value}`);
    return true;
  }

  /** The request committed (keep) or failed (give back). */
  settle(space: string, family: Family, value: bigint, committed: boolean): void {
    this.inflight.delete(`${space}\0${family}\0${value}`);
    if (!committed) this.set(space, family).delete(value);
  }

  /** Another node holds this address (learned from a lost race). */
  learn(space: string, family: Family, ip: string): void {
    const parsed = parseIp(ip);
    if (parsed && this.set(space, family).add(parsed.value)) this.count++;
  }

  /** Rebuilds every extent set from the store, keeping in-flight picks taken. */
  async rebuild(store: Store, reuse: ReuseState): Promise<void> {
    const fresh = new AddressIndex();
    await store.forEachAllocated((space, family, ip) => fresh.learn(space, family, ip));
    for (const held of reuse.held()) {
      const parsed = parseIp(held.ip);
      if (parsed) fresh.set(held.space, held.family).add(parsed.value);
    }
    for (const key of this.inflight) {
      const [space, family, value] = key.split("\0");
      fresh.set(space!, Number(family) as Family).add(BigInt(value!));
    }
    this.taken = fresh.taken;
    this.count = fresh.count;
  }

  async loadCursors(store: Store): Promise<void> {
    for (const [pool, ip] of await store.cursors()) {
      const parsed = parseIp(ip);
      if (parsed) this.cursors.set(pool, parsed.value);
    }
  }
}
