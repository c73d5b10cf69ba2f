/**
 * Plugin exec cost (sections 1–3): the wall time of one exec, spawn to exit, of a CNI plugin
 * with real CNI_* env and the netconf on stdin — what kubelet's runtime pays per pod. Samples
 * are interleaved round-robin (floor, ipamd, host-local, floor, …) so drift and noise hit all
 * alike.
 *
 * - floor: a program that only does `await Bun.write(Bun.stdout, "{}\n")`, compiled with the
 *   same bun and flags as dist/ipamd. No Bun plugin can be faster.
 * - roundTrip: the floor plus what any plugin backed by a daemon must do: read stdin, POST it
 *   over the unix socket to the no-op server (throughput.ts) and print the answer. No plugin
 *   of this architecture can be faster; ipamd's own cost is what it adds on top of this.
 * - ipamdEmpty: the same ipamd binary against a second daemon that stays empty (common.ts),
 *   the peer of the flatness figures: sampled in the same rounds as the filled daemon.
 * - ADD/DEL: a fresh container ID per sample, DEL removes it at once, so the number in use
 *   stays what the fill made it. The ipamd figure includes the daemon's durable commit.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildBaseline } from "./baseline-build.ts";
import { baselineSocket, emptySocket, type Figure, floorSocket, HOST_LOCAL, IPAMD, NETWORK, SAMPLES, SUBNET, socket, type Stats, stats, tmp, verdict } from "./common.ts";

export type Impl = "floor" | "roundTrip" | "ipamd" | "ipamdEmpty" | "hostLocal" | "baseline";
const BUILD_FLAGS = ["--compile", "--splitting", "--minify", "--bytecode", "--format=esm", "--target=bun"]; // as the Makefile
/** All four run from fresh files in the run's temp dir (see prepareBinaries). */
const bin = join(tmp, "bin");
const binaries: Record<Impl, string> = { floor: join(bin, "floor"), roundTrip: join(bin, "round-trip"), ipamd: join(bin, "ipamd"), ipamdEmpty: join(bin, "ipamd"), hostLocal: join(bin, "host-local"), baseline: join(bin, "ipamd-baseline") };
/** The previous main's binary, built by prepareBinaries (see baseline.ts). */
export const baselineBinary = binaries.baseline;
const netconfs: Record<Impl, string> = {
  floor: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "floor", ranges: [[{ subnet: SUBNET }]] } }),
  roundTrip: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "round-trip", ranges: [[{ subnet: SUBNET }]] } }),
  ipamd: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "ipamd", socket, ranges: [[{ subnet: SUBNET }]] } }),
  ipamdEmpty: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "ipamd", socket: emptySocket, ranges: [[{ subnet: SUBNET }]] } }),
  hostLocal: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "host-local", dataDir: join(tmp, "host-local"), ranges: [[{ subnet: SUBNET }]] } }),
  baseline: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "ipamd", socket: baselineSocket, ranges: [[{ subnet: SUBNET }]] } }),
};

const ROUND_TRIP_SOURCE = `const netconf = await Bun.stdin.text();
const res = await fetch("http://floor/v1/cni/add", { unix: ${JSON.stringify(floorSocket)}, method: "POST", headers: { "content-type": "application/json" }, body: netconf });
await Bun.write(Bun.stdout, await res.text());
process.exit(0);
export {};
`;

/**
 * Builds the floor and the round-trip floor with dist/ipamd's bun and flags, and copies
 * dist/ipamd and host-local beside them. Fresh copies, because on these machines the kernel
 * (DAMON's pageout) evicts the page cache of files it judges cold: an old binary measured
 * 0.3 ms (host-local) to 1.8 ms (a 100 MiB Bun program) slower per exec than a byte-identical
 * copy made a minute before. All four then start from the same state.
 */
export async function prepareBinaries(): Promise<void> {
  mkdirSync(bin, { recursive: true });
  for (const impl of ["ipamd", "hostLocal"] as const) {
    await Bun.write(binaries[impl], Bun.file(impl === "ipamd" ? IPAMD : HOST_LOCAL));
    chmodSync(binaries[impl], 0o755);
  }
  for (const [impl, source] of [["floor", 'await Bun.write(Bun.stdout, "{}\\n");\nexport {};\n'], ["roundTrip", ROUND_TRIP_SOURCE]] as const) {
    const src = `${binaries[impl]}.ts`;
    await Bun.write(src, source);
    const build = Bun.spawnSync([process.execPath, "build", src, ...BUILD_FLAGS, "--outfile", binaries[impl]], { stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`building the ${impl} program failed: ${build.stderr.toString()}`);
  }
  await buildBaseline(binaries.baseline);
}

function cniEnv(command: string, containerID: string): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: `/var/run/netns/${containerID}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" };
}

/** One exec, timed from spawn to exit; throws unless it succeeded (and, for ADD, allocated). */
async function exec(impl: Impl, command: string, containerID: string): Promise<number> {
  const start = Bun.nanoseconds();
  const proc = Bun.spawn([binaries[impl]], { stdin: new Blob([netconfs[impl]]), stdout: "pipe", stderr: "pipe", env: cniEnv(command, containerID) });
  const code = await proc.exited;
  const ms = (Bun.nanoseconds() - start) / 1e6;
  const out = await new Response(proc.stdout).text();
  if (code !== 0 || (command === "ADD" && impl !== "floor" && !out.includes('"ips"'))) {
    throw new Error(`${impl} ${command} ${containerID} failed (exit ${code}): ${out.trim()} ${(await new Response(proc.stderr).text()).trim()}`);
  }
  return ms;
}

let idCounter = 0;
const freshId = (tag: string) => `bench-${tag}-${process.pid}-${++idCounter}`;
export type Samples = Record<string, Partial<Record<Impl, number[]>>>;

/** The round-trip program always makes an ADD's round trip: it stands beside ADD only. */
const measures = (impl: Impl, command: string) => impl !== "roundTrip" || command === "ADD";

/** Per round, each command once per implementation, in order. */
export async function measure(commands: string[], impls: Impl[], tag: string, rounds = SAMPLES): Promise<Samples> {
  const samples: Samples = {};
  for (const c of commands) samples[c] = Object.fromEntries(impls.filter((i) => measures(i, c)).map((i) => [i, []]));
  for (let round = 0; round < rounds; round++) {
    const ids = Object.fromEntries(impls.map((i) => [i, freshId(tag)])) as Record<Impl, string>;
    for (const command of commands) {
      for (const impl of impls) if (measures(impl, command)) samples[command]![impl]!.push(await exec(impl, command, ids[impl]));
    }
  }
  return samples;
}

const ms = (x: number) => x.toFixed(2);
const pcts = (s: Stats) => ({ p50: s.p50, p90: s.p90, p99: s.p99, n: s.n });

/** Sections 1 and 2: ipamd next to host-local, the floor alongside. */
export function execFigure(section: string, name: string, s: Partial<Record<Impl, number[]>>, target?: "floor" | "ratio"): Figure {
  const ipamd = stats(s.ipamd!);
  const hl = stats(s.hostLocal!);
  const floor = stats(s.floor!);
  const roundTrip = s.roundTrip ? stats(s.roundTrip) : undefined;
  const ratio = hl.p50 / ipamd.p50;
  const extra = { ipamd: pcts(ipamd), hostLocal: pcts(hl), floor: pcts(floor), ...(roundTrip ? { roundTrip: pcts(roundTrip) } : {}) };
  const base = { section, name, unit: "ms p50", ipamd: ipamd.p50, peer: hl.p50, peerName: "host-local", ratio, extra };
  if (target === "floor") {
    const over = ipamd.p50 - floor.p50;
    const bound = roundTrip ? `; stdin + one socket round trip alone: floor + ${ms(roundTrip.p50 - floor.p50)} ms` : "";
    return { ...base, target: "≤ floor + 1.0 ms", pass: over <= 1.0, detail: verdict(over <= 1.0, `floor ${ms(floor.p50)} + ${ms(over)} ms${bound}`) };
  }
  if (target === "ratio") {
    const bound = roundTrip ? `; stdin + one socket round trip alone: ${(hl.p50 / roundTrip.p50).toFixed(1)}×` : "";
    return { ...base, target: "≥ 20× host-local", pass: ratio >= 20, detail: verdict(ratio >= 20, `${ratio.toFixed(1)}×${bound}`) };
  }
  return { ...base, target: "—", pass: null, detail: `floor ${ms(floor.p50)} + ${ms(ipamd.p50 - floor.p50)} ms; p90 ${ms(ipamd.p90)}, p99 ${ms(ipamd.p99)}` };
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
