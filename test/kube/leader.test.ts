/**
 * Lease election between candidates on a real kube-apiserver, with short timings (lease 2 s,
 * renew deadline 1.5 s, retry 0.25 s). A sampler checks every 5 ms that no two candidates
 * count themselves leader at once, and the leadership terms reported by the callbacks must
 * not overlap. Take-over after a release, after a crash (no release), a leader cut off from
 * the API server stepping down in time, and a candidate whose clock is an hour ahead that
 * must not steal a lease that is being renewed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { cleanup, waitFor } from "../e2e/harness.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { type Clock, systemClock } from "../../src/kube/clock.ts";
import { LeaderElector } from "../../src/kube/leader.ts";
import { Leases } from "../../src/kube/resources.ts";
import type { KubeApiserver } from "./apiserver.ts";
import { startWithAdmin, uniqueName } from "./helpers.ts";

afterAll(cleanup);

const NS = "election";
const TIMINGS = { leaseDurationSeconds: 2, renewDeadlineMs: 1500, retryPeriodMs: 250 };
let kube: KubeApiserver;
let client: KubeClient;

beforeAll(async () => ({ kube, client } = await startWithAdmin({}, [NS])), 120_000);

interface Term { identity: string; start: number; end: number | null }
let electors: LeaderElector[] = [];
let terms: Term[] = [];
let sampler: ReturnType<typeof setInterval> | undefined;
let overlaps: string[] = [];

/** Starts sampling isLeader of every candidate created so far and later. */
function startSampling(): void {
  sampler = setInterval(() => {
    const leading = electors.filter((e) => e.isLeader).map((e) => e.options.identity);
    if (leading.length > 1) overlaps.push(`${performance.now().toFixed(0)} ms: ${leading.join(" and ")}`);
  }, 5);
}

afterEach(async () => {
  clearInterval(sampler);
  await Promise.all(electors.map((e) => e.stop()));
  // Terms reported by the callbacks, in start order, must each end before the next starts.
  const sorted = [...terms].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i - 1]!.end ?? Infinity).toBeLessThanOrEqual(sorted[i]!.start);
  expect(overlaps).toEqual([]);
  electors = [];
  terms = [];
  overlaps = [];
});

function candidate(lease: string, identity: string, extra: { clock?: Clock } = {}): LeaderElector {
  let term: Term | null = null;
  const elector = new LeaderElector({
    client, namespace: NS, name: lease, identity, ...TIMINGS, ...extra,
    onStartedLeading: () => { term = { identity, start: performance.now(), end: null }; terms.push(term); },
    onStoppedLeading: () => { if (term) term.end = performance.now(); },
  });
  electors.push(elector);
  return elector.start();
}

const leaderOf = (candidates: LeaderElector[]) => candidates.filter((e) => e.isLeader);

describe("leader election", () => {
  test("one of two leads and renews; a released lease passes on at once, a crashed one once the lease runs out", async () => {
    const lease = uniqueName("lease");
    startSampling();
    const [a, b] = [candidate(lease, "a"), candidate(lease, "b")];
    await waitFor(() => leaderOf([a, b]).length === 1, 10_000, "a leader");
    const first = leaderOf([a, b])[0]!;
    const second = first === a ? b : a;
    const signal = await first.whenLeading();
    const held = await client.get(Leases, lease, { namespace: NS });
    expect(held.spec).toMatchObject({ holderIdentity: first.options.identity, leaseDurationSeconds: 2, leaseTransitions: 0 });
    await waitFor(async () => (await client.get(Leases, lease, { namespace: NS })).spec?.renewTime !== held.spec?.renewTime, 5_000, "a renewal");
    await waitFor(() => second.leader === first.options.identity, 5_000, "the other candidate to see the leader");

    const released = performance.now();
    await first.stop();
    expect(signal.aborted).toBe(true);
    await waitFor(() => second.isLeader, 5_000, "the other candidate to take over");
    const handover = performance.now() - released;
    expect(handover).toBeLessThan(TIMINGS.leaseDurationSeconds * 1000);
    expect((await client.get(Leases, lease, { namespace: NS })).spec).toMatchObject({ holderIdentity: second.options.identity, leaseTransitions: 1 });

    // A crash: the leader stops renewing and does not release. A third must wait the lease out.
    const third = candidate(lease, "c");
    await waitFor(() => third.leader === second.options.identity, 5_000, "the third candidate to see the leader");
    const died = performance.now();
    await second.stop({ release: false });
    await waitFor(() => third.isLeader, 10_000, "the third candidate to take over");
    const takeover = performance.now() - died;
    expect(takeover).toBeGreaterThanOrEqual(TIMINGS.leaseDurationSeconds * 1000 - TIMINGS.retryPeriodMs);
    // The lease, then one jittered retry period and a request; a renew deadline of slack for a busy machine.
    expect(takeover).toBeLessThan(TIMINGS.leaseDurationSeconds * 1000 + TIMINGS.renewDeadlineMs);
    expect((await client.get(Leases, lease, { namespace: NS })).spec).toMatchObject({ holderIdentity: "c", leaseTransitions: 2 });
    console.log(`hand-over after release: ${handover.toFixed(0)} ms; take-over after a crash: ${takeover.toFixed(0)} ms (lease 2000 ms)`);
  }, 30_000);

  test("a leader cut off from the API server stops counting itself leader within the renew deadline, and leads again after", async () => {
    const lease = uniqueName("lease");
    startSampling();
    const a = candidate(lease, "a");
    const signal = await a.whenLeading();
    // The last instant a sample saw a leading: a stalled event loop can delay the samples, never
    // make a late one read true, so this bound is exact.
    let lastLeading = 0;
    const watch = setInterval(() => { if (a.isLeader) lastLeading = Date.now(); }, 5);
    await waitFor(() => lastLeading > 0, 1_000, "a sample that sees the leader");
    await kube.stopApiserver("SIGKILL");
    const cut = Date.now();
    try {
      await waitFor(() => signal.aborted, 5_000, "the leader to step down");
      expect(a.isLeader).toBe(false);
      expect(lastLeading - cut).toBeLessThan(TIMINGS.renewDeadlineMs);
    } finally {
      clearInterval(watch);
      await kube.startApiserver();
    }
    await a.whenLeading();
    // "a" and only "a" leads again; on a machine busy enough to hold up a renewal right after
    // the restart, its new term may end and a third begin: each term is still "a"'s alone.
    expect(terms.length).toBeGreaterThanOrEqual(2);
    expect(new Set(terms.map((t) => t.identity))).toEqual(new Set(["a"]));
  }, 30_000);

  test("a candidate whose clock runs an hour ahead does not take a lease that is being renewed", async () => {
    const lease = uniqueName("lease");
    startSampling();
    const a = candidate(lease, "a");
    await a.whenLeading();
    let sleeps = 0;
    const ahead: Clock = { now: () => systemClock.now() + 3_600_000, sleep: (ms, signal) => (sleeps++, systemClock.sleep(ms, signal)) };
    const skewed = candidate(lease, "skewed", { clock: ahead });
    // Twelve tries of 250+ ms: more than a lease duration of the renewed record seen as "an hour old".
    await waitFor(() => sleeps >= 12, 10_000, "twelve tries by the skewed candidate");
    expect(skewed.isLeader).toBe(false);
    expect(skewed.leader).toBe("a");
    expect(a.isLeader).toBe(true);
    const waiting = skewed.whenLeading();
    await skewed.stop();
    expect(await waiting.then(() => "led", (e: Error) => e.message)).toBe("candidate skewed has stopped");
  }, 30_000);

  test("timings that could make two leaders are refused", () => {
    const options = { client, namespace: NS, name: "x", identity: "x" };
    expect(() => new LeaderElector({ ...options, leaseDurationSeconds: 2, renewDeadlineMs: 2000, retryPeriodMs: 250 })).toThrow(/retryPeriod < renewDeadline < leaseDuration/);
    expect(() => new LeaderElector({ ...options, leaseDurationSeconds: 2, renewDeadlineMs: 1000, retryPeriodMs: 1000 })).toThrow(/retryPeriod < renewDeadline < leaseDuration/);
  });
});
