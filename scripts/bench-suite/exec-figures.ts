/**
 * The verdicts of the exec figures (exec.ts): each p50 against its peers' p50s from the same
 * rounds. The target of every plugin command is set above the round-trip floor, what stdin
 * and one socket round trip alone cost: ADD and DEL within 1.0 ms of it (at any fill), STATUS
 * and VERSION within 0.3 ms. host-local's ratio, the Bun floor and the durable floor are
 * printed beside each.
 */
import { type Figure, type Stats, stats, verdict } from "./common.ts";
import type { Impl } from "./exec.ts";

const ms = (x: number) => x.toFixed(2);
const pcts = (s: Stats) => ({ p50: s.p50, p90: s.p90, p99: s.p99, n: s.n });

/**
 * ipamd's p50 for one command against the round-trip floor's p50 of the same rounds (`rt`:
 * the round's samples taken beside ADD, floors included): pass when ipamd adds at most `budgetMs`.
 */
export function overRoundTrip(section: string, name: string, s: Partial<Record<Impl, number[]>>, rt: Partial<Record<Impl, number[]>>, budgetMs: number): Figure {
  const ipamd = stats(s.ipamd!);
  const roundTrip = stats(rt.roundTrip!);
  const over = ipamd.p50 - roundTrip.p50;
  const pass = over <= budgetMs;
  const floor = rt.floor ? stats(rt.floor) : undefined;
  const hl = s.hostLocal ? stats(s.hostLocal) : undefined;
  const durable = rt.durable ? stats(rt.durable) : undefined;
  const stdin = rt.stdin ? stats(rt.stdin) : undefined;
  const notes = [
    `round trip ${ms(roundTrip.p50)} + ${ms(over)} ms`,
    ...(hl ? [`host-local ${ms(hl.p50)} ms (${(hl.p50 / ipamd.p50).toFixed(1)}× ipamd)`] : []),
    ...(floor ? [`Bun floor ${ms(floor.p50)}`] : []),
    ...(floor && stdin ? [`stdin alone: Bun floor + ${ms(stdin.p50 - floor.p50)}`] : []),
    ...(durable ? [`durable floor: round trip + ${ms(durable.p50 - roundTrip.p50)}`] : []),
    `p99 ${ms(ipamd.p99)}`,
  ];
  return {
    section,
    name,
    unit: "ms p50",
    ipamd: ipamd.p50,
    peer: roundTrip.p50,
    peerName: "round-trip floor",
    ratio: hl ? hl.p50 / ipamd.p50 : null,
    target: `≤ round trip + ${budgetMs.toFixed(1)} ms`,
    pass,
    detail: verdict(pass, notes.join("; ")),
    extra: { ipamd: pcts(ipamd), roundTrip: pcts(roundTrip), ...(floor ? { floor: pcts(floor) } : {}), ...(hl ? { hostLocal: pcts(hl) } : {}), ...(durable ? { durable: pcts(durable) } : {}), ...(stdin ? { stdin: pcts(stdin) } : {}) },
  };
}

/** The daemon's CPU per plugin STATUS (information), beside the socket floor's per round trip. */
export function statusCpuFigure(cpu: { ipamdUs: number; floorUs: number }, count: number): Figure {
  return {
    section: "1 exec, empty",
    name: "daemon CPU per STATUS",
    unit: "µs",
    ipamd: cpu.ipamdUs,
    peer: cpu.floorUs,
    peerName: "socket floor, per round trip",
    ratio: cpu.ipamdUs / cpu.floorUs,
    target: "—",
    pass: null,
    detail: `CPU time of the serving process (its threads' schedstat) over ${count} execs of each`,
  };
}

/**
 * Section 3: ipamd's ADD p50 with `inUse` addresses taken, against the same binary's ADD p50
 * on the empty daemon, sampled in the same rounds (filled, empty, filled, …): whatever the
 * machine does meanwhile hits both, so the plain ratio of the two p50s is the verdict.
 */
export function flatnessFigure(inUse: number, s: Partial<Record<Impl, number[]>>): Figure {
  const ipamd = stats(s.ipamd!);
  const empty = stats(s.ipamdEmpty!);
  const floor = stats(s.floor!);
  const ratio = ipamd.p50 / empty.p50;
  return {
    section: "3 flatness",
    name: `ADD, ${inUse.toLocaleString("en")} in use (vs an empty daemon, interleaved)`,
    unit: "ms p50",
    ipamd: ipamd.p50,
    peer: empty.p50,
    peerName: "ipamd, empty daemon",
    ratio,
    target: "≤ 1.2× empty",
    pass: ratio <= 1.2,
    detail: verdict(ratio <= 1.2, `${ratio.toFixed(2)}×; p99 ${ms(ipamd.p99)} vs ${ms(empty.p99)}; floor ${ms(floor.p50)}`),
    extra: { ipamd: pcts(ipamd), empty: pcts(empty), floor: pcts(floor) },
  };
}
