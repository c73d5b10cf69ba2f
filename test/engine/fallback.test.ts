/**
 * Planner properties of fallback groups, driven by random ADD/DEL sequences: an address comes
 * from a later pool of a group only while every earlier one (that the pod may use) is full, a
 * pool excluded for the namespace's limit is never picked, and no address is handed out twice.
 */
import { describe, expect, test } from "bun:test";
import { planAdd } from "../../src/engine/plan-add.ts";
import { planRelease } from "../../src/engine/plan-release.ts";
import { DEFAULT_POLICY, namedSpace } from "../../src/engine/pools.ts";
import { AddressState } from "../../src/engine/state.ts";
import type { Target } from "../../src/engine/target.ts";
import { ErrorCode, IpamError } from "../../src/errors.ts";
import { parseIp } from "../../src/ipam/address.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import type { AllocationRecord } from "../../src/store/store.ts";
import { random } from "./random.ts";

const pools = compilePools({
  first: { addresses: ["10.1.0.1-10.1.0.4"], prefix: 24 },
  second: { addresses: ["10.2.0.1-10.2.0.3"], prefix: 24, maxPerNamespace: 2 },
  third: { addresses: ["10.3.0.1-10.3.0.4"], prefix: 24 },
});
const targets: Target[] = ["first", "second", "third"].map((name) => {
  const pool = pools.get(name)!;
  return { space: namedSpace(4), pool: name, rangeSet: pool.rangeSet!, policy: pool.policy, maxPerNamespace: pool.scope.maxPerNamespace };
});
const inPool = (t: Target, ip: string) => t.rangeSet.ranges.some((r) => parseIp(ip)!.value >= r.start && parseIp(ip)!.value <= r.end);


describe("fallback groups", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    test(`seed ${seed}: the first pool with room is used; a limit-excluded one never; nothing twice`, () => {
      const rnd = random(seed);
      const state = new AddressState();
      const live = new Map<string, AllocationRecord>();
      for (let step = 0; step < 400; step++) {
        if (rnd() < 0.55) {
          const id = `c${step}`;
          const excludeSecond = rnd() < 0.3;
          const excluded = new Map<number, IpamError>(excludeSecond ? [[1, new IpamError(ErrorCode.NamespaceLimitReached, "second: limit")]] : []);
          const free = targets.map((t) => t.rangeSet.ranges.some((r) => state.takenSet(t.space, 4).countIn(r.start, r.end) < Number(r.end - r.start + 1n)));
          let outcome;
          try {
            outcome = planAdd(state, { req: { network: "net", containerID: id, ifname: "eth0", pod: { namespace: "team-a", name: id } }, targets, slots: [[0, 1, 2]], requested: [], bindings: new Map(), scopes: [null, null, null], borrow: new Set(), excluded, node: "n", now: step });
          } catch (err) {
            const usable = free.filter((f, i) => f && !(i === 1 && excludeSecond));
            expect(usable).toEqual([]);
            // Some candidate was exhausted rather than limited: the group's answer is 100, naming each.
            expect((err as IpamError).code).toBe(ErrorCode.PoolExhausted);
            expect((err as IpamError).message).toContain("pool third is exhausted");
            continue;
          }
          if (!("plan" in outcome)) throw new Error("no blocks here");
          const [record] = outcome.plan.allocated;
          const chosen = targets.findIndex((t) => inPool(t, record!.ip));
          // Every earlier candidate was full (or excluded) when this one was picked.
          for (let i = 0; i < chosen; i++) expect(free[i] && !(i === 1 && excludeSecond)).toBe(false);
          expect(chosen === 1 && excludeSecond).toBe(false);
          // The limit is asked of the store with the allocation from a limited pool only.
          expect(outcome.plan.changes.some((c) => c.op === "limit")).toBe(chosen === 1);
          expect([...live.values()].some((r) => r.ip === record!.ip)).toBe(false);
          state.reserve(outcome.plan);
          state.settle(outcome.plan);
          live.set(id, record!);
        } else if (live.size > 0) {
          const ids = [...live.keys()];
          const id = ids[Math.floor(rnd() * ids.length)]!;
          const plan = planRelease(state, { records: [live.get(id)!], cause: "t", kind: "released", now: step, policyOf: () => DEFAULT_POLICY });
          state.reserve(plan);
          state.settle(plan);
          live.delete(id);
        }
      }
    });
  }
});
