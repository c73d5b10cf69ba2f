/**
 * The planners driven by random request sequences (seeded, so a failure can be replayed), each
 * plan carried out on memory as the apply path does — reserved, then settled, or put back as
 * after a commit that surely failed — against a plain model of what a store would hold. After
 * every step: no address held twice, holds honoured, gateways and excluded addresses never
 * handed out, memory equal to the model, and cursors moving as host-local's do.
 */
import { describe, expect, test } from "bun:test";
import { bindingKey, planAdd } from "../../src/engine/plan-add.ts";
import { planExpiry, planRelease } from "../../src/engine/plan-release.ts";
import type { Plan } from "../../src/engine/plan.ts";
import { DEFAULT_POLICY, namedSpace } from "../../src/engine/pools.ts";
import { AddressState } from "../../src/engine/state.ts";
import { cursorOf, type Target } from "../../src/engine/target.ts";
import { formatIp, parseIp } from "../../src/ipam/address.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { parseRangeSets } from "../../src/ipam/pool.ts";
import type { AllocationRecord } from "../../src/store/store.ts";
import { random } from "./random.ts";


const inline = parseRangeSets([[{ subnet: "10.0.0.0/27", rangeStart: "10.0.0.5", rangeEnd: "10.0.0.20" }, { subnet: "10.0.1.0/28", gateway: "10.0.1.3" }]])[0]!;
const pools = compilePools({
  cool: { addresses: ["10.1.0.0/27"], prefix: 24, gateway: "10.1.0.1", excludedAddresses: ["10.1.0.10-10.1.0.14"], releaseCooldown: 30 },
  sticky: { addresses: ["10.2.0.0/28"], prefix: 24, gateway: "10.2.0.14", sticky: "pod", stickyTTL: 60 },
});
const named = (name: string): Target => {
  const pool = pools.get(name)!;
  return { space: namedSpace(pool.family), pool: name, rangeSet: pool.rangeSet!, policy: pool.policy, maxPerNamespace: null };
};
const TARGETS: Target[][] = [[{ space: "net", pool: null, rangeSet: inline, policy: DEFAULT_POLICY, maxPerNamespace: null }], [named("cool")], [named("sticky")]];
/** Addresses no plan may ever hand out: gateways and excluded ones. */
const FORBIDDEN = new Set(["10.0.1.3", "10.1.0.1", "10.2.0.14", ...Array.from({ length: 5 }, (_, i) => `10.1.0.${10 + i}`)]);

/** What a store would hold after every committed plan: the model the planners are judged by. */
class Model {
  readonly allocations = new Map<string, AllocationRecord>();
  readonly holds = new Map<string, string>();
  /** What the pools' policies promise, kept apart from the plans: address → until when, and for whom. */
  readonly promised = new Map<string, { until: number; pod: string | null }>();
  apply(plan: Plan): void {
    for (const c of plan.changes) {
      if (c.op === "allocate") {
        const key = `${c.record.space}/${c.record.ip}`;
        if (this.allocations.has(key) || this.holds.has(key)) throw new Error(`${key} allocated while taken`);
        this.allocations.set(key, c.record);
      } else if (c.op === "release") this.allocations.delete(`${c.record.space}/${c.record.ip}`);
      else if (c.op === "hold") this.holds.set(`${c.hold.space}/${c.hold.ip}`, c.hold.kind);
      else if (c.op === "unhold") this.holds.delete(`${c.hold.space}/${c.hold.ip}`);
    }
  }
  attachment(containerID: string): AllocationRecord[] {
    return [...this.allocations.values()].filter((r) => r.containerID === containerID);
  }
}

/** The apply path on memory alone: reserve, then settle, or put back (a commit that surely failed). */
function carryOut(state: AddressState, model: Model, plan: Plan, fails: boolean): void {
  const undo = state.reserve(plan);
  if (fails) return undo();
  model.apply(plan);
  state.settle(plan);
}

function checkInvariants(state: AddressState, model: Model): void {
  for (const r of model.allocations.values()) expect(FORBIDDEN.has(r.ip)).toBe(false);
  expect(state.allocations).toBe(model.allocations.size);
  const held = [...state.allHolds()].map((h) => `${h.space}/${h.ip}`).sort();
  expect(held).toEqual([...model.holds.keys()].sort());
  // Every address the store would keep is taken in memory, and nothing else is.
  for (const [space, family] of [["net", 4], ["@ipv4", 4]] as const) {
    const taken = [...state.takenSet(space, family).extents()].flatMap(([lo, hi]) => Array.from({ length: Number(hi - lo + 1n) }, (_, i) => formatIp(lo + BigInt(i), 4)));
    const kept = [...model.allocations.keys(), ...model.holds.keys()].filter((k) => k.startsWith(`${space}/`)).map((k) => k.slice(space.length + 1));
    expect(taken.sort()).toEqual(kept.sort());
  }
}

function run(seed: number, steps: number): void {
  const rnd = random(seed);
  const state = new AddressState();
  const model = new Model();
  let now = 1_000_000;
  for (let step = 0; step < steps; step++) {
    now += Math.floor(rnd() * 5_000);
    const which = Math.floor(rnd() * TARGETS.length);
    const targets = TARGETS[which]!;
    const pod = Math.floor(rnd() * 12);
    const containerID = `c${which}-${pod}-${Math.floor(rnd() * 2)}`;
    const fails = rnd() < 0.05;
    for (const plan of planExpiry(state, targets[0]!.space, (pool) => pools.get(pool)?.policy ?? DEFAULT_POLICY, now, 32)) carryOut(state, model, plan, rnd() < 0.05);
    if (rnd() < 0.6) {
      if (model.attachment(containerID).length > 0) continue; // ADD of a known attachment answers what it holds
      const req = { network: "net", containerID, ifname: "eth0", pod: { namespace: "default", name: `pod-${pod}` } };
      const podKey = `${targets[0]!.pool}:default/pod-${pod}`;
      const bindings = new Map([[bindingKey(targets[0]!.space, podKey), state.binding(targets[0]!.space, podKey)]]);
      let outcome;
      try {
        outcome = planAdd(state, { req, targets, slots: [[0]], requested: [], bindings, scopes: [null], borrow: new Set(), excluded: new Map(), node: "n", now });
      } catch (err) {
        expect((err as { code?: number }).code).toBeOneOf([100, 101]);
        continue;
      }
      if (!("plan" in outcome)) throw new Error("no blocks here: nothing to claim");
      const plan = outcome.plan;
      for (const r of plan.allocated) {
        // Never an address someone holds — except a sticky pod's own parked one — nor one a
        // cooldown or another pod's sticky binding still keeps.
        const key = `${r.space}/${r.ip}`;
        expect({ key, taken: model.allocations.has(key) }).toEqual({ key, taken: false });
        if (model.holds.has(key)) expect(model.holds.get(key)).toBe("sticky");
        const promise = model.promised.get(key);
        if (promise && promise.until > now) expect({ key, pod: r.podName }).toEqual({ key, pod: promise.pod });
      }
      carryOut(state, model, plan, fails);
    } else {
      const records = model.attachment(containerID);
      const plan = planRelease(state, { records, cause: "test", kind: "released", now, policyOf: (r) => (r.pool ? pools.get(r.pool)!.policy : DEFAULT_POLICY) });
      carryOut(state, model, plan, fails);
      if (fails) continue;
      for (const r of records) {
        if (r.pool === "cool") model.promised.set(`${r.space}/${r.ip}`, { until: now + 30_000, pod: null });
        // A sticky pod keeps its address for stickyTTL, unless it already holds another.
        if (r.pool === "sticky") model.promised.set(`${r.space}/${r.ip}`, { until: now + 60_000, pod: r.podName });
      }
    }
    checkInvariants(state, model);
  }
}

describe("planners under random request sequences", () => {
  for (let seed = 1; seed <= 40; seed++) {
    test(`seed ${seed}: 400 steps of ADD, DEL, expiry and failed commits`, () => run(seed, 400));
  }
});

describe("cursors move as host-local's do", () => {
  test("each ADD takes the next free address after the last one handed out, wrapping, skipping the gateway", () => {
    const state = new AddressState();
    const model = new Model();
    const t = TARGETS[0]![0]!;
    const add = (id: string): string => {
      const outcome = planAdd(state, { req: { network: "net", containerID: id, ifname: "eth0" }, targets: [t], slots: [[0]], requested: [], bindings: new Map(), scopes: [null], borrow: new Set(), excluded: new Map(), node: "n", now: 1 });
      if (!("plan" in outcome)) throw new Error("unexpected");
      carryOut(state, model, outcome.plan, false);
      return outcome.plan.allocated[0]!.ip;
    };
    const release = (id: string) => carryOut(state, model, planRelease(state, { records: model.attachment(id), cause: "t", kind: "released", now: 1, policyOf: () => DEFAULT_POLICY }), false);
    // The whole set in order: .5-.20, then the second range without its gateway .3.
    const all = ["5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"].map((n) => `10.0.0.${n}`);
    all.push(...["1", "2", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14"].map((n) => `10.0.1.${n}`));
    expect(Array.from({ length: 3 }, (_, i) => add(`a${i}`))).toEqual(all.slice(0, 3) as string[]);
    // A released address is not reused at once: allocation goes on after the cursor.
    release("a1");
    expect(add("b0")).toBe(all[3]!);
    for (let i = 4; i < all.length; i++) expect(add(`fill${i}`)).toBe(all[i]!);
    // Wrapped around: the first free address from the start is the one released.
    expect(add("b1")).toBe(all[1]!);
    expect(state.cursor(cursorOf(t))).toBe(parseIp(all[1]!)!.value);
  });
});
