/**
 * The reuse policy of released addresses: a cooldown before an address is handed out again
 * (so stale conntrack entries and caches pointing at it expire first), and sticky bindings
 * that keep a StatefulSet pod's address for it across re-creation. Both keep the address
 * taken in the index while they hold it; both expire lazily, in release order, when the
 * pool next allocates: FIFO queues, so expiry costs O(1) per expired entry.
 */
import { type Family, parseIp } from "../ipam/address.ts";
import type { PoolPolicy } from "../ipam/named-pool.ts";
import type { Binding, Change, Cooling } from "../store/store.ts";

export interface Freed {
  space: string;
  family: Family;
  value: bigint;
}

/** A cooldown or parked binding that ran out: the change that ends it in the store, what it frees, the way back. */
export interface ExpiredHold {
  change: Change;
  freed: Freed | undefined;
  putBack: () => void;
}

const bindingKey = (space: string, pod: string) => `${space}\0${pod}`;

export class ReuseState {
  private readonly cooling = new Map<string, Cooling[]>();
  private readonly bindings = new Map<string, Binding>();
  /** Parked (released) bindings per space, oldest first; entries may be stale (re-bound since). */
  private readonly parked = new Map<string, Binding[]>();

  load(cooling: Cooling[], bindings: Binding[]): void {
    for (const c of cooling) this.queue(this.cooling, c.space).push(c);
    for (const b of bindings) {
      this.bindings.set(bindingKey(b.space, b.pod), b);
      if (b.releasedAt !== null) this.queue(this.parked, b.space).push(b);
    }
  }

  /** Every address held by a cooldown or a binding: taken in the index at start-up. */
  *held(): Generator<{ space: string; family: Family; ip: string }> {
    for (const queue of this.cooling.values()) yield* queue;
    for (const b of this.bindings.values()) if (b.releasedAt !== null) yield b;
  }

  private queue<T>(map: Map<string, T[]>, space: string): T[] {
    let q = map.get(space);
    if (!q) map.set(space, (q = []));
    return q;
  }

  binding(space: string, pod: string): Binding | undefined {
    return this.bindings.get(bindingKey(space, pod));
  }

  bind(binding: Binding): Change {
    this.bindings.set(bindingKey(binding.space, binding.pod), binding);
    if (binding.releasedAt !== null) this.queue(this.parked, binding.space).push(binding);
    return { op: "bind", binding };
  }

  /** Puts a binding back as it was (undefined: there was none), after a failed ADD. */
  restore(space: string, pod: string, binding: Binding | undefined): void {
    if (binding) this.bindings.set(bindingKey(space, pod), binding);
    else this.bindings.delete(bindingKey(space, pod));
  }

  unbind(space: string, pod: string): Change {
    const binding = this.bindings.get(bindingKey(space, pod));
    this.bindings.delete(bindingKey(space, pod));
    return binding?.releasedAt != null ? { op: "unbind", space, pod, heldIp: binding.ip } : { op: "unbind", space, pod };
  }

  cool(cooling: Cooling): Change {
    this.queue(this.cooling, cooling.space).push(cooling);
    return { op: "cool", cooling };
  }

  /** Takes back one cooldown (its release did not commit). */
  dropCooling(cooling: Cooling): void {
    const queue = this.cooling.get(cooling.space);
    const at = queue?.indexOf(cooling) ?? -1;
    if (at >= 0) queue!.splice(at, 1);
  }

  /** Cooling and parked addresses of a space that `inPool` accepts (pools share a space). */
  counts(space: string, inPool: (ip: string) => boolean): { cooling: number; parked: number } {
    let parked = 0;
    for (const b of this.bindings.values()) if (b.space === space && b.releasedAt !== null && inPool(b.ip)) parked++;
    return { cooling: (this.cooling.get(space) ?? []).filter((c) => inPool(c.ip)).length, parked };
  }

  /** The spaces where a cooldown or a parked binding holds an address. */
  spacesHolding(ip: string): string[] {
    const spaces = new Set<string>();
    for (const [space, queue] of this.cooling) if (queue.some((c) => c.ip === ip)) spaces.add(space);
    for (const b of this.bindings.values()) if (b.ip === ip && b.releasedAt !== null) spaces.add(b.space);
    return [...spaces];
  }

  /** Drops every cooldown and binding that holds an address (an operator's release), in `spaces` if given. */
  forget(ip: string, spaces?: Set<string>): { changes: Change[]; freed: Freed[] } {
    const changes: Change[] = [];
    const freed: Freed[] = [];
    for (const [space, queue] of this.cooling) {
      if (spaces && !spaces.has(space)) continue;
      for (const c of queue.filter((c) => c.ip === ip)) {
        queue.splice(queue.indexOf(c), 1);
        changes.push({ op: "uncool", space, ip });
        freed.push({ space, family: c.family, value: parseIp(ip)!.value });
      }
    }
    for (const b of [...this.bindings.values()].filter((b) => b.ip === ip && (!spaces || spaces.has(b.space)))) {
      changes.push(this.unbind(b.space, b.pod));
      // An address still allocated stays taken: only a parked binding frees it.
      if (b.releasedAt !== null) freed.push({ space: b.space, family: b.family, value: parseIp(ip)!.value });
    }
    return { changes, freed };
  }

  /**
   * Ends at most `limit` cooldowns and sticky bindings of a space that have run out by `now`
   * (the rest wait for the next call). They leave this state at once, each with the store
   * change that ends it, the address it frees, and a way back if that change fails.
   */
  expire(space: string, policy: PoolPolicy, now: number, limit = Number.POSITIVE_INFINITY): ExpiredHold[] {
    const expired: ExpiredHold[] = [];
    const freed = (family: Family, ip: string): Freed | undefined => {
      const parsed = parseIp(ip);
      return parsed ? { space, family, value: parsed.value } : undefined;
    };
    const cooling = this.queue(this.cooling, space);
    while (expired.length < limit && cooling.length > 0 && cooling[0]!.until <= now) {
      const c = cooling.shift()!;
      // Back at the front: every entry put back has run out, so the queue's order still holds.
      expired.push({ change: { op: "uncool", space, ip: c.ip }, freed: freed(c.family, c.ip), putBack: () => cooling.unshift(c) });
    }
    const parked = this.queue(this.parked, space);
    const ttl = policy.stickyTtlMs;
    // A pool that stopped being sticky lets its parked bindings go at once.
    const expiredBy = (b: Binding) => !policy.sticky || (ttl !== null && b.releasedAt! + ttl <= now);
    while (expired.length < limit && parked.length > 0 && expiredBy(parked[0]!)) {
      const b = parked.shift()!;
      if (this.bindings.get(bindingKey(space, b.pod)) !== b) continue; // re-bound or released since
      const putBack = () => {
        if (this.bindings.has(bindingKey(space, b.pod))) return; // bound again meanwhile
        this.bindings.set(bindingKey(space, b.pod), b);
        parked.unshift(b);
      };
      expired.push({ change: this.unbind(space, b.pod), freed: freed(b.family, b.ip), putBack });
    }
    return expired;
  }
}
