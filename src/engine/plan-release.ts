/**
 * Planning what gives addresses back: a release (DEL, CNI GC, the leak sweep, an operator),
 * the end of holds that ran out, and an operator dropping the holds on one address. The
 * reuse policy is decided here and only here: a sticky pool parks a pod's address for it, a
 * cooldown rests it, otherwise it is free once the release is durable. Pure functions.
 */
import { type Family, parseIp } from "../ipam/address.ts";
import type { PoolPolicy } from "../ipam/named-pool.ts";
import type { AllocationRecord, Binding, Hold, HoldEvent, ReleaseKind } from "../store/store.ts";
import { type Address, emptyPlan, type Plan } from "./plan.ts";
import type { StateView } from "./state.ts";
import { stickyKey } from "./target.ts";

const addressOf = (space: string, family: Family, ip: string): Address | null => {
  const parsed = parseIp(ip);
  return parsed ? { space, family, value: parsed.value } : null;
};

export interface ReleaseInput {
  records: AllocationRecord[];
  cause: string;
  kind: ReleaseKind;
  now: number;
  /** The reuse policy of the pool a record came from, as configured now. */
  policyOf: (r: AllocationRecord) => PoolPolicy;
  /** Bindings read fresh where other daemons may change them (by space, then pod); else memory's. */
  bindings?: Map<string, Binding | undefined>;
}

export function planRelease(view: StateView, input: ReleaseInput): Plan {
  const plan = emptyPlan();
  for (const r of input.records) {
    plan.changes.push({ op: "release", record: r, kind: input.kind, cause: input.cause });
    plan.released.push({ record: r, kind: input.kind });
    const policy = input.policyOf(r);
    const pod = stickyKey(r.pool, r.podNamespace, r.podName);
    const key = pod ? `${r.space}\0${pod}` : "";
    const binding = pod ? (input.bindings?.has(key) ? input.bindings.get(key) : view.binding(r.space, pod)) : undefined;
    const bound = pod !== null && binding !== undefined && binding.ip === r.ip;
    if (bound && policy.sticky) {
      // DEL, CNI GC or the leak sweep alike: the pod may come back (a StatefulSet), so its
      // address is parked for it.
      const parked: Binding = { ...binding, releasedAt: input.now };
      const hold: Hold = { space: r.space, family: r.family, ip: r.ip, kind: "sticky", until: null, pod };
      plan.changes.push({ op: "hold", hold }, { op: "bind", binding: parked });
      plan.binds.push({ space: r.space, pod, to: parked });
      plan.holds.push(hold);
      continue;
    }
    if (bound) {
      // The pool stopped being sticky: the binding goes with the allocation.
      plan.changes.push({ op: "unbind", space: r.space, pod });
      plan.binds.push({ space: r.space, pod, to: undefined });
    }
    if (policy.releaseCooldownMs > 0) {
      const hold: Hold = { space: r.space, family: r.family, ip: r.ip, kind: "cooling", until: input.now + policy.releaseCooldownMs, pod: null };
      plan.changes.push({ op: "hold", hold });
      plan.holds.push(hold);
    } else {
      const freed = addressOf(r.space, r.family, r.ip);
      if (freed) plan.frees.push(freed);
    }
  }
  return plan;
}

/** A plan that ends one hold: the address is free once durable, a parked pod's binding goes. */
export function endHold(view: StateView, hold: Hold, event?: HoldEvent): Plan {
  const plan = emptyPlan();
  plan.changes.push({ op: "unhold", hold, ...(event ? { event } : {}) });
  plan.ends.push(hold);
  const freed = addressOf(hold.space, hold.family, hold.ip);
  if (freed) plan.frees.push(freed);
  const binding = hold.pod ? view.binding(hold.space, hold.pod) : undefined;
  if (hold.pod && binding && binding.ip === hold.ip && binding.releasedAt !== null) {
    plan.changes.push({ op: "unbind", space: hold.space, pod: hold.pod });
    plan.binds.push({ space: hold.space, pod: hold.pod, to: undefined });
  }
  return plan;
}

/** The named pool a sticky binding's key names (`POOL:NAMESPACE/NAME`; pool names hold no ':'). */
export const poolOfBinding = (pod: string): string => pod.slice(0, pod.indexOf(":"));

/**
 * The holds of a space that have run out by `now`, at most `limit`, each ended by a plan of
 * its own (so one that fails strands no other). Cooldowns and parked bindings end in the
 * order they began. A parked address is judged by its own pool's policy as configured now
 * (named pools of a family share one space): a pool that stopped being sticky lets its parked
 * addresses go at once.
 */
export function planExpiry(view: StateView, space: string, policyOf: (pool: string) => PoolPolicy, now: number, limit: number): Plan[] {
  const plans: Plan[] = [];
  for (const h of view.queued(space, "cooling")) {
    if (plans.length >= limit || (h.until ?? 0) > now) break;
    plans.push(endHold(view, h));
  }
  for (const h of view.queued(space, "sticky")) {
    if (plans.length >= limit) break;
    const policy = policyOf(poolOfBinding(h.pod ?? ""));
    const releasedAt = (h.pod ? view.binding(space, h.pod)?.releasedAt : null) ?? null;
    const ttl = policy.stickyTtlMs;
    const expired = !policy.sticky || releasedAt === null || (ttl !== null && releasedAt + ttl <= now);
    if (!expired) break;
    plans.push(endHold(view, h));
  }
  return plans;
}

/**
 * An operator's release of the holds on one address (in `spaces`, or every space): each hold
 * ends, and every binding to the address goes — a parked one with its hold, an active one
 * alone (its allocation is released by planRelease). A reservation stays: only unreserve ends it.
 */
export function planForget(view: StateView, ip: string, spaces: string[], bindings: Binding[]): Plan {
  const plan = emptyPlan();
  for (const space of spaces) {
    const hold = view.hold(space, ip);
    if (!hold || hold.kind === "reserved") continue;
    const ended = endHold(view, hold);
    plan.changes.push(...ended.changes.filter((c) => c.op !== "unbind"));
    plan.ends.push(...ended.ends);
    plan.frees.push(...ended.frees);
  }
  for (const b of bindings) {
    if (b.ip !== ip || !spaces.includes(b.space)) continue;
    plan.changes.push({ op: "unbind", space: b.space, pod: b.pod });
    plan.binds.push({ space: b.space, pod: b.pod, to: undefined });
  }
  return plan;
}
