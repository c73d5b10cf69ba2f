/**
 * Plugin exec cost (sections 1–3): the wall time of one exec, spawn to exit, of a CNI plugin
 * with real CNI_* env and the netconf on stdin — what kubelet's runtime pays per pod. Samples
 * are interleaved: every round runs each program once per command, in an order drawn afresh
 * per round (measure), so drift, noise and what one exec leaves for the next hit all alike.
 * Figures: exec-figures.ts.
 *
 * - floor: a program that only does `await Bun.write(Bun.stdout, "{}\n")`, compiled with the
 *   same bun and flags as dist/ipamd. No Bun plugin can be faster.
 * - stdin: the floor plus reading stdin whole (Bun.stdin.text(), as ipamd reads it): the part
 *   of the round-trip floor that is not the socket (information).
 * - roundTrip (the round-trip floor): the floor plus what any plugin backed by a daemon must
 *   do: read stdin, POST it over the unix socket to the no-op server (floors.ts, a process of
 *   its own) and print the answer. No plugin of this architecture can be faster; ipamd's own
 *   cost is what it adds on top of this, and the targets are set above it.
 * - durable: the same program against the durable floor (floors.ts), which fdatasyncs each
 *   body before answering: what a durable answer alone adds on this disk (information).
 * - ipamdEmpty: the same ipamd binary against a second daemon that stays empty (common.ts),
 *   the peer of the flatness figures: sampled in the same rounds as the filled daemon.
 * - ADD/DEL: a fresh container ID per sample, DEL removes it at once, so the number in use
 *   stays what the fill made it. The ipamd figure includes the daemon's durable commit.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildBaseline } from "./baseline-build.ts";
import { baselineSocket, cpuMs, daemonPid, durableSocket, emptySocket, floorSocket, HOST_LOCAL, IPAMD, NETWORK, SAMPLES, SUBNET, socket, tmp } from "./common.ts";
import { socketFloorPid } from "./floors.ts";

export type Impl = "floor" | "stdin" | "roundTrip" | "durable" | "ipamd" | "ipamdEmpty" | "hostLocal" | "baseline";
const BUILD_FLAGS = ["--compile", "--splitting", "--minify", "--bytecode", "--format=esm", "--target=bun"]; // as the Makefile
/** All run from fresh files in the run's temp dir (see prepareBinaries). */
const bin = join(tmp, "bin");
const binaries: Record<Impl, string> = {
  floor: join(bin, "floor"),
  stdin: join(bin, "stdin"),
  roundTrip: join(bin, "round-trip"),
  durable: join(bin, "durable-round-trip"),
  ipamd: join(bin, "ipamd"),
  ipamdEmpty: join(bin, "ipamd"),
  hostLocal: join(bin, "host-local"),
  baseline: join(bin, "ipamd-baseline"),
};
/** The previous main's binary, built by prepareBinaries (see baseline.ts). */
export const baselineBinary = binaries.baseline;
// ipamd's netconfs are 1.1.0, the first version with STATUS; host-local speaks up to 1.0.0.
const ipamdConf = (unix: string) => JSON.stringify({ cniVersion: "1.1.0", name: NETWORK, ipam: { type: "ipamd", socket: unix, ranges: [[{ subnet: SUBNET }]] } });
const netconfs: Record<Impl, string> = {
  floor: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "floor", ranges: [[{ subnet: SUBNET }]] } }),
  stdin: JSON.stringify({ cniVersion: "1.1.0", name: NETWORK, ipam: { type: "stdin", ranges: [[{ subnet: SUBNET }]] } }),
  roundTrip: JSON.stringify({ cniVersion: "1.1.0", name: NETWORK, ipam: { type: "round-trip", ranges: [[{ subnet: SUBNET }]] } }),
  durable: JSON.stringify({ cniVersion: "1.1.0", name: NETWORK, ipam: { type: "round-trip", ranges: [[{ subnet: SUBNET }]] } }),
  ipamd: ipamdConf(socket),
  ipamdEmpty: ipamdConf(emptySocket),
  hostLocal: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "host-local", dataDir: join(tmp, "host-local"), ranges: [[{ subnet: SUBNET }]] } }),
  baseline: ipamdConf(baselineSocket),
};

const roundTripSource = (unix: string) => `const netconf = await Bun.stdin.text();
const res = await fetch("http://floor/v1/cni/add", { unix: ${JSON.stringify(unix)}, method: "POST", headers: { "content-type": "application/json" }, body: netconf });
await Bun.write(Bun.stdout, await res.text());
process.exit(0);
export {};
`;

/**
 * Builds the floor and the round-trip programs with dist/ipamd's bun and flags, and copies
 * dist/ipamd and host-local beside them. Fresh copies, because on these machines the kernel
 * (DAMON's pageout) evicts the page cache of files it judges cold: an old binary measured
 * 0.3 ms (host-local) to 1.8 ms (a 100 MiB Bun program) slower per exec than a byte-identical
 * copy made a minute before. All of them then start from the same state.
 */
export async function prepareBinaries(): Promise<void> {
  mkdirSync(bin, { recursive: true });
  for (const impl of ["ipamd", "hostLocal"] as const) {
    await Bun.write(binaries[impl], Bun.file(impl === "ipamd" ? IPAMD : HOST_LOCAL));
    chmodSync(binaries[impl], 0o755);
  }
  const sources = [
    ["floor", 'await Bun.write(Bun.stdout, "{}\\n");\nexport {};\n'],
    ["stdin", 'const netconf = await Bun.stdin.text();\nawait Bun.write(Bun.stdout, `{"read":${netconf.length}}\\n`);\nprocess.exit(0);\nexport {};\n'],
    ["roundTrip", roundTripSource(floorSocket)], ["durable", roundTripSource(durableSocket)],
  ] as const;
  for (const [impl, source] of sources) {
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
  const answered = impl === "floor" ? true : impl === "stdin" ? out.trim() === `{"read":${netconfs.stdin.length}}` : command !== "ADD" || out.includes('"ips"');
  if (code !== 0 || !answered) {
    throw new Error(`${impl} ${command} ${containerID} failed (exit ${code}): ${out.trim()} ${(await new Response(proc.stderr).text()).trim()}`);
  }
  return ms;
}

let idCounter = 0;
const freshId = (tag: string) => `bench-${tag}-${process.pid}-${++idCounter}`;
export type Samples = Record<string, Partial<Record<Impl, number[]>>>;

/**
 * The floor and round-trip programs do the same whatever the command: they run once per round,
 * beside ADD, and are the peers of every command of that round. host-local has no STATUS.
 */
const ONCE_PER_ROUND: ReadonlySet<Impl> = new Set(["floor", "stdin", "roundTrip", "durable"]);
const measures = (impl: Impl, command: string) => (!ONCE_PER_ROUND.has(impl) || command === "ADD") && (impl !== "hostLocal" || command !== "STATUS");

/** xorshift32 from a fixed seed: every run draws the same sequence of round orders. */
let orderSeed = 0x2545f491;
function nextOrderDraw(): number {
  orderSeed ^= orderSeed << 13;
  orderSeed ^= orderSeed >>> 17;
  orderSeed ^= orderSeed << 5;
  return (orderSeed >>> 0) / 2 ** 32;
}

/**
 * Per round, each command once per implementation: each implementation's commands in the order
 * given (its DEL removes the container its ADD of the round made), and each next exec drawn at
 * random among the implementations with a command left. With one fixed order every exec had
 * the same predecessor in every round, and what a program leaves behind (its disk writes, the
 * caches it evicted) lands on the next one: at 10,000 in use ipamd's DEL always came right
 * after host-local's ADD, which reads its whole directory, while its peer never did. In one
 * run in random order, an exec right after host-local's at 10,000 took 0.3–0.55 ms longer
 * (ipamd's DEL p50 7.60 ms against 7.20–7.31 after a floor or its own ADD; the round-trip
 * floor 6.68 against 6.04–6.13).
 */
export async function measure(commands: string[], impls: Impl[], tag: string, rounds = SAMPLES): Promise<Samples> {
  const samples: Samples = {};
  for (const c of commands) samples[c] = Object.fromEntries(impls.filter((i) => measures(i, c)).map((i) => [i, []]));
  for (let round = 0; round < rounds; round++) {
    const ids = Object.fromEntries(impls.map((i) => [i, freshId(tag)])) as Record<Impl, string>;
    const pending = impls.map((impl) => ({ impl, commands: commands.filter((c) => measures(impl, c)) })).filter((p) => p.commands.length > 0);
    while (pending.length > 0) {
      const at = Math.floor(nextOrderDraw() * pending.length);
      const next = pending[at]!;
      const command = next.commands.shift()!;
      samples[command]![next.impl]!.push(await exec(next.impl, command, ids[next.impl]));
      if (next.commands.length === 0) pending.splice(at, 1);
    }
  }
  return samples;
}

/**
 * CPU time the daemon spends per plugin STATUS (containerd asks every few seconds, on every
 * node), beside the socket floor's per round trip: `count` execs of each, nothing else talking
 * to either meanwhile, the server's CPU time (cpuMs: its threads' schedstat) over the whole loop.
 */
export async function statusCpu(count: number): Promise<{ ipamdUs: number; floorUs: number }> {
  const perExec = async (impl: Impl, command: string, pid: number) => {
    const before = cpuMs(pid);
    for (let i = 0; i < count; i++) await exec(impl, command, freshId("status"));
    return ((cpuMs(pid) - before) / count) * 1000;
  };
  return { ipamdUs: await perExec("ipamd", "STATUS", daemonPid()), floorUs: await perExec("roundTrip", "ADD", socketFloorPid) };
}
