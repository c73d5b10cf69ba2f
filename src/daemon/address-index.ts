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

/**
 * A canonical dotted quad ("10.1.2.3", as the store writes them) as a number, without the
 * allocations of split and BigInt; undefined for anything else, which parseIp then judges.
 */
function ipv4Number(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // a leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
      digits++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + part;
}

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
    // Collected per set, then loaded in bulk: a million one-by-one inserts would cost seconds.
    const bySet = new Map<string, { space: string; family: Family; values: (bigint | number)[] }>();
    let last: { space: string; family: Family; values: (bigint | number)[] } | undefined;
    const holds: { space: string; family: Family; ip: string }[] = [];
    await store.forEachAllocated((space, family, ip, held) => {
      // Holds are taken but are not allocations: counted apart (STATUS, pools, metrics).
      if (held) return void holds.push({ space, family, ip });
      let value: bigint | number | undefined = family === 4 ? ipv4Number(ip) : undefined;
      if (value === undefined) {
        const parsed = parseIp(ip);
        if (!parsed) return;
        value = parsed.value;
      }
      // Rows come ordered by space: the set of the row before is nearly always this row's.
      if (!last || last.space !== space || last.family !== family) {
        const key = `${space}/${family}`;
        last = bySet.get(key);
        if (!last) bySet.set(key, (last = { space, family, values: [] }));
      }
      last.values.push(value);
    });
    for (const { space, family, values } of bySet.values()) fresh.count += fresh.set(space, family).addAll(values);
    for (const held of [...holds, ...reuse.held()]) {
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
