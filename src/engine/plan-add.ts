/**
 * Planning an ADD: for each target, the pod's sticky address, a requested (static) address,
 * or the next free one after the range set's cursor — from this node's blocks first when
 * blocks apply, asking for a block when they are full, borrowing only when allowed. Pure:
 * everything it needs is given; it returns the plan, or what the engine must do first.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { formatIp, type Ip, parseIp } from "../ipam/address.ts";
import { allocateNext, checkStatic } from "../ipam/allocator.ts";
import type { Range, RangeSet } from "../ipam/pool.ts";
import type { AddRequest } from "./requests.ts";
import type { AllocationRecord, Binding, Hold } from "../store/store.ts";
import { emptyPlan, type Plan } from "./plan.ts";
import type { StateView } from "./state.ts";
import { cursorOf, stickyKey, type Target } from "./target.ts";

export interface AddInput {
  req: AddRequest;
  /** Every candidate of every slot (see AddTargets). */
  targets: Target[];
  /** Per slot, its candidates' indexes in `targets`, in the order they are tried. */
  slots: number[][];
  requested: Ip[];
  /** The pod's binding per sticky target (bindingKey), read fresh where other daemons may change it. */
  bindings: Map<string, Binding | undefined>;
  /**
   * Per target: where a dynamic address comes from first — this node's blocks (empty when it
   * owns none yet) — or null where blocks do not apply: the whole range set.
   */
  scopes: (RangeSet | null)[];
  /** Targets whose blocks are full and that may now borrow from the whole range set. */
  borrow: Set<number>;
  /** Targets this pod may not take from now (its namespace is at the pool's limit), and why. */
  excluded: Map<number, IpamError>;
  node: string;
  now: number;
}

/** The key of a pod's binding in a target's space (AddInput.bindings). */
export const bindingKey = (space: string, pod: string): string => `${space}\0${pod}`;

export type AddOutcome = { plan: Plan } | { needsBlock: number };

/** Which address of one target, and how: a sticky pod's own, a requested one, or the next free. */
interface Pick {
  value: bigint;
  range: Range;
  sticky: boolean;
}

const parseIpValue = (ip: string): bigint | null => parseIp(ip)?.value ?? null;

function pickStatic(t: Target, view: StateView, wanted: Ip): Pick {
  const check = checkStatic(t.rangeSet, view.takenSet(t.space, t.rangeSet.family), wanted.family, wanted.value);
  const text = formatIp(wanted.value, wanted.family);
  if (check.ok) return { value: wanted.value, range: check.range, sticky: false };
  if (check.reason === "gateway") throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is the gateway of ${t.pool ? `pool ${t.pool}` : `range set ${t.rangeSet.key}`}`);
  throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is already allocated (or held for reuse) in ${t.pool ? `pool ${t.pool}` : `network ${t.space}`}`);
}

/** A parked sticky binding's address, when it is still in the target's range set. */
function pickSticky(t: Target, binding: Binding | undefined, pod: string): Pick | null {
  if (!binding) return null;
  if (binding.releasedAt === null) {
    throw new IpamError(ErrorCode.AddressInUse, `address ${binding.ip} is bound to pod ${pod} and still held by another of its attachments; retry once that one is deleted`);
  }
  const value = parseIpValue(binding.ip);
  const range = value === null ? undefined : t.rangeSet.ranges.find((r) => value >= r.start && value <= r.end);
  // The pool was redefined without this address: the binding cannot be honoured.
  return range && value !== null ? { value, range, sticky: true } : null;
}

/** The next free address of a target: its scope first, then (if allowed) the whole range set. */
function pickNext(t: Target, view: StateView, scope: RangeSet | null, borrow: boolean): Pick | "needs-block" {
  const taken = view.takenSet(t.space, t.rangeSet.family);
  const cursor = view.cursor(cursorOf(t));
  const inScope = scope?.ranges.length === 0 ? null : allocateNext(scope ?? t.rangeSet, taken, cursor);
  if (inScope) return { ...inScope, sticky: false };
  if (scope !== null && !borrow) return "needs-block";
  const anywhere = scope !== null ? allocateNext(t.rangeSet, taken, null) : null;
  if (anywhere) return { ...anywhere, sticky: false };
  const name = t.pool ? `pool ${t.pool}` : `range set ${t.rangeSet.key} of network ${t.space}`;
  throw new IpamError(ErrorCode.PoolExhausted, `${name} is exhausted: all ${t.rangeSet.size} addresses are in use`, `no IP addresses available in range set ${t.rangeSet.key}`);
}

/** The plan's part for one picked address: reserving it, the pod's binding, and the allocation. */
function addPick(plan: Plan, view: StateView, t: Target, pick: Pick, input: AddInput, pod: string | null, binding: Binding | undefined, wanted: boolean): void {
  const { space, rangeSet } = t;
  const family = rangeSet.family;
  const ip = formatIp(pick.value, family);
  const sticky = (at: string, fam = family): Hold => view.hold(space, at) ?? { space, family: fam, ip: at, kind: "sticky", until: null, pod };
  if (pick.sticky) {
    // Held for the pod already: the hold ends as the allocation takes its place. Memory may
    // not know the hold (another node parked it): then the address is taken here too.
    const hold = sticky(ip);
    plan.ends.push(hold);
    plan.changes.push({ op: "unhold", hold });
    if (!view.takenSet(space, family).has(pick.value)) plan.takes.push({ space, family, value: pick.value });
  } else {
    plan.takes.push({ space, family, value: pick.value });
    plan.cursors.push([cursorOf(t), pick.value]);
    plan.changes.push({ op: "cursor", rangeSet: cursorOf(t), ip });
  }
  if (pod) {
    if (binding && binding.releasedAt !== null && binding.ip !== ip) {
      // The pod comes back on another address (a static one, or its old one left the pool):
      // the parked one is let go, not leaked.
      const old = sticky(binding.ip, binding.family);
      plan.changes.push({ op: "unhold", hold: old });
      plan.ends.push(old);
      const parsed = parseIpValue(binding.ip);
      if (parsed !== null) plan.frees.push({ space, family: binding.family, value: parsed });
    }
    const bound: Binding = { space, pod, family, ip, releasedAt: null };
    plan.binds.push({ space, pod, to: bound });
    plan.changes.push({ op: "bind", binding: bound });
  }
  const { req } = input;
  const record: AllocationRecord = {
    space,
    network: req.network,
    ip,
    family,
    prefix: pick.range.subnet.prefix,
    gateway: pick.range.gateway === null ? null : formatIp(pick.range.gateway, family),
    pool: t.pool,
    rangeSet: t.pool === null ? rangeSet.key : null,
    containerID: req.containerID,
    ifname: req.ifname,
    netns: req.netns ?? null,
    podNamespace: req.pod?.namespace ?? null,
    podName: req.pod?.name ?? null,
    podUid: req.pod?.uid ?? null,
    node: input.node,
    createdAt: input.now,
    static: wanted,
  };
  plan.changes.push({ op: "allocate", record });
  // Counted by the store, in the same commit: exact even when other daemons allocate too.
  if (t.maxPerNamespace !== null && t.pool !== null && record.podNamespace) plan.changes.push({ op: "limit", pool: t.pool, namespace: record.podNamespace, max: t.maxPerNamespace });
  plan.allocated.push(record);
}

/** One slot's address: which candidate, what it picked, whether it was asked for. */
type SlotPick = { index: number; pick: Pick; wanted: boolean } | { needsBlock: number };

/** Of several candidates' failures, the answer: the one alone, or all of them named. */
function slotFailure(failures: IpamError[]): IpamError {
  if (failures.length === 1) return failures[0]!;
  const allLimits = failures.every((f) => f.code === ErrorCode.NamespaceLimitReached);
  return new IpamError(allLimits ? ErrorCode.NamespaceLimitReached : ErrorCode.PoolExhausted, `no pool of the group has an address for this pod: ${failures.map((f) => f.message).join("; ")}`);
}

function pickInSlot(view: StateView, input: AddInput, slot: number[], unclaimed: Set<Ip>): SlotPick {
  const { targets, req } = input;
  // A requested address, in whichever candidate holds it: refused with its pool's exclusion
  // (the namespace at its limit) rather than asked for again and again.
  for (const index of slot) {
    const t = targets[index]!;
    const wanted = input.requested.find((ip) => unclaimed.has(ip) && ip.family === t.rangeSet.family && t.rangeSet.ranges.some((r) => ip.value >= r.start && ip.value <= r.end));
    if (!wanted) continue;
    const excluded = input.excluded.get(index);
    if (excluded) throw excluded;
    unclaimed.delete(wanted);
    return { index, pick: pickStatic(t, view, wanted), wanted: true };
  }
  // A sticky pod comes back to its parked address, whichever candidate it came from (not from
  // one it may not take from now: then it is served like any other pod, by the rest).
  for (const index of slot) {
    if (input.excluded.has(index)) continue;
    const t = targets[index]!;
    const pod = t.policy.sticky ? stickyKey(t.pool, req.pod?.namespace, req.pod?.name) : null;
    const pick = pod ? pickSticky(t, input.bindings.get(bindingKey(t.space, pod)), pod) : null;
    if (pick) return { index, pick, wanted: false };
  }
  const failures: IpamError[] = [];
  for (const index of slot) {
    const excluded = input.excluded.get(index);
    if (excluded) {
      failures.push(excluded);
      continue;
    }
    try {
      const next = pickNext(targets[index]!, view, input.scopes[index] ?? null, input.borrow.has(index));
      return next === "needs-block" ? { needsBlock: index } : { index, pick: next, wanted: false };
    } catch (err) {
      if (!(err instanceof IpamError) || err.code !== ErrorCode.PoolExhausted) throw err;
      failures.push(err);
    }
  }
  throw slotFailure(failures);
}

export function planAdd(view: StateView, input: AddInput): AddOutcome {
  const { req, targets } = input;
  const plan = emptyPlan();
  // The attachment's first addresses: a repeated ADD is refused by the commit (AttachmentHeld)
  // and answered with what it holds, so no ADD waits for a read before it (engine.ts).
  plan.changes.push({ op: "unheld", network: req.network, containerID: req.containerID, ifname: req.ifname });
  const unclaimed = new Set(input.requested);
  for (const slot of input.slots) {
    const picked = pickInSlot(view, input, slot, unclaimed);
    if ("needsBlock" in picked) return picked;
    const t = targets[picked.index]!;
    const pod = t.policy.sticky ? stickyKey(t.pool, req.pod?.namespace, req.pod?.name) : null;
    const binding = pod ? input.bindings.get(bindingKey(t.space, pod)) : undefined;
    addPick(plan, view, t, picked.pick, input, pod, binding, picked.wanted);
  }
  if (unclaimed.size > 0) {
    const [ip] = unclaimed;
    throw new IpamError(ErrorCode.AddressNotInPool, `requested IP ${formatIp(ip!.value, ip!.family)} is not in any range of network ${req.network}`);
  }
  return { plan };
}
