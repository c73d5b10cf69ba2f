/**
 * The plugin benchmark: ipamd against Debian's host-local and against the "Bun floor".
 *
 *   make bench                      (builds dist/ipamd, then runs this with the repo's bun)
 *   BENCH_SAMPLES=500 BENCH_FILL=10000 node_modules/.bin/bun scripts/bench.ts
 *
 * Every figure is the wall time of one exec, from spawn to exit, of a CNI plugin with real
 * CNI_* env and the netconf on stdin (what kubelet's runtime pays per pod). Samples are
 * interleaved round-robin (floor, ipamd, host-local, floor, …) so drift and noise hit all
 * three alike; p50/p90/p99 are nearest-rank percentiles in milliseconds.
 *
 * - floor: a program that only does `await Bun.write(Bun.stdout, "{}\n")`, compiled with the
 *   same bun and flags as dist/ipamd. No Bun plugin can be faster; ipamd's own cost is the
 *   difference to it.
 * - VERSION: start-up plus printing; no stdin parsing, no daemon call.
 * - ADD / DEL (empty pool): a fresh container ID per sample, DEL removes it at once, so
 *   the pool stays near-empty. The ipamd figure includes the daemon's durable commit.
 * - ADD / DEL (10k in use): the same after both pools hold 10,000 live addresses.
 *
 * Targets (never loosen them; a miss prints MISSED with the number):
 * - ipamd ADD p50, empty pool  ≤ floor p50 + 1.0 ms
 * - ipamd ADD p50, 10k in use  ≥ 20× faster than host-local's ADD p50 at 10k
 *
 * It starts its own `dist/ipamd serve` on a temp socket and database and gives host-local a
 * temp dataDir; both, and the daemon, are removed at the end even on failure or Ctrl-C.
 * All traffic to the daemon stays on its unix socket. Results also go to bench/results.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "..");
const IPAMD = join(ROOT, "dist/ipamd");
const HOST_LOCAL = "/usr/lib/cni/host-local";
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 300);
const FILL = Number(process.env.BENCH_FILL ?? 10_000);
const SUBNET = "10.128.0.0/14"; // 262k addresses: room for the fill and every sample
const NETWORK = "benchnet";
const BUILD_FLAGS = ["--compile", "--splitting", "--minify", "--bytecode", "--format=esm", "--target=bun"]; // as the Makefile

type Impl = "floor" | "ipamd" | "hostLocal";
const IMPLS: Impl[] = ["floor", "ipamd", "hostLocal"];
interface Stats { n: number; p50: number; p90: number; p99: number; mean: number }
interface Figure { name: string; ipamd: Stats; hostLocal: Stats; floor: Stats; ratio: number; target: string; pass: boolean | null; detail: string }

const tmp = mkdtempSync(join(tmpdir(), "ipamd-bench-"));
let daemon: Subprocess | undefined;

async function cleanup(): Promise<void> {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill("SIGTERM");
    const stopped = await Promise.race([daemon.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
    if (!stopped) daemon.kill("SIGKILL");
  }
  rmSync(tmp, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void cleanup().finally(() => process.exit(130)));

const socket = join(tmp, "ipamd.sock");
const binaries: Record<Impl, string> = { floor: join(tmp, "floor"), ipamd: IPAMD, hostLocal: HOST_LOCAL };
const netconfs: Record<Impl, string> = {
  floor: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "floor", ranges: [[{ subnet: SUBNET }]] } }),
  ipamd: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "ipamd", socket, ranges: [[{ subnet: SUBNET }]] } }),
  hostLocal: JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "host-local", dataDir: join(tmp, "host-local"), ranges: [[{ subnet: SUBNET }]] } }),
};

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

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

let idCounter = 0;
const freshId = (tag: string) => `bench-${tag}-${process.pid}-${++idCounter}`;

/** Runs the figures round-robin: per round, each figure once per implementation, in order. */
async function measure(commands: string[], tag: string): Promise<Record<string, Record<Impl, number[]>>> {
  const samples: Record<string, Record<Impl, number[]>> = {};
  for (const c of commands) samples[c] = { floor: [], ipamd: [], hostLocal: [] };
  for (let round = 0; round < SAMPLES; round++) {
    const ids: Record<Impl, string> = { floor: freshId(tag), ipamd: freshId(tag), hostLocal: freshId(tag) };
    for (const command of commands) {
      for (const impl of IMPLS) samples[command]![impl].push(await exec(impl, command, ids[impl]));
    }
  }
  return samples;
}

async function buildFloor(): Promise<void> {
  const src = join(tmp, "floor.ts");
  await Bun.write(src, 'await Bun.write(Bun.stdout, "{}\\n");\nexport {};\n');
  const build = Bun.spawnSync([process.execPath, "build", src, ...BUILD_FLAGS, "--outfile", binaries.floor], { stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`building the floor failed: ${build.stderr.toString()}`);
}

async function daemonAnswers(): Promise<boolean> {
  try {
    return (await fetch("http://ipamd/v1/status", { unix: socket, signal: AbortSignal.timeout(500) })).ok;
  } catch {
    return false;
  }
}

async function startDaemon(): Promise<void> {
  daemon = Bun.spawn([IPAMD, "serve", "--socket", socket, "--db", join(tmp, "ipamd.db")], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const deadline = Date.now() + 10_000;
  while (!(await daemonAnswers())) {
    if (daemon.exitCode !== null) throw new Error(`ipamd serve exited with ${daemon.exitCode}: ${await new Response(daemon.stderr as ReadableStream).text()}`);
    if (Date.now() > deadline) throw new Error("ipamd serve did not answer within 10 s");
    await Bun.sleep(20);
  }
}

/** Runs `task(i)` for i < count on `workers` concurrent workers. */
async function pool(count: number, workers: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < count) await task(next++);
  }));
}

/**
 * Fills ipamd through its socket (concurrent POST /v1/cni/add, the real store path) and
 * host-local by writing its data dir in host-local's own format: one file per address named
 * by it, holding "containerID\r\nifname", plus last_reserved_ip.0 — byte for byte what
 * FILL of its ADDs leave behind (checked against a real ADD in test/e2e/operations.test.ts's
 * import test). Filling through host-local's ADDs takes ~11 minutes at 10k, because each ADD
 * scans the whole dir under a lock: the very cost this benchmark measures.
 */
async function fill(): Promise<void> {
  const started = performance.now();
  const ranges = [[{ subnet: SUBNET }]];
  await pool(FILL, 32, async (i) => {
    const containerID = `fill-${i}`;
    const res = await fetch("http://ipamd/v1/cni/add", {
      unix: socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ network: NETWORK, containerID, ifname: "eth0", netns: `/var/run/netns/${containerID}`, ranges }),
    });
    if (!res.ok) throw new Error(`filling ipamd: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  });
  const status = (await (await fetch("http://ipamd/v1/status", { unix: socket })).json()) as { allocations: number };
  console.error(`filled ipamd to ${status.allocations} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const hlStarted = performance.now();
  const dir = join(tmp, "host-local", NETWORK);
  mkdirSync(dir, { recursive: true });
  const base = 0x0a800002; // 10.128.0.2: host-local's first address after the gateway .1
  const ipOf = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  for (let i = 0; i < FILL; i++) writeFileSync(join(dir, ipOf(base + i)), `fill-${i}\r\neth0`);
  writeFileSync(join(dir, "last_reserved_ip.0"), ipOf(base + FILL - 1));
  console.error(`filled host-local's data dir to ${FILL} in ${((performance.now() - hlStarted) / 1000).toFixed(1)} s`);
}

const ms = (x: number) => x.toFixed(2);

function figure(name: string, s: Record<Impl, number[]>, target?: "floor" | "ratio"): Figure {
  const f = { name, ipamd: stats(s.ipamd), hostLocal: stats(s.hostLocal), floor: stats(s.floor) };
  const ratio = f.hostLocal.p50 / f.ipamd.p50;
  if (target === "floor") {
    const over = f.ipamd.p50 - f.floor.p50;
    const pass = over <= 1.0;
    return { ...f, ratio, target: "≤ floor + 1.0 ms", pass, detail: `${pass ? "pass" : "MISSED"} (floor + ${ms(over)} ms)` };
  }
  if (target === "ratio") {
    const pass = ratio >= 20;
    return { ...f, ratio, target: "≥ 20× host-local", pass, detail: `${pass ? "pass" : "MISSED"} (${ratio.toFixed(1)}×)` };
  }
  return { ...f, ratio, target: "—", pass: null, detail: `(floor + ${ms(f.ipamd.p50 - f.floor.p50)} ms)` };
}

function table(figures: Figure[]): string {
  const rows = [
    "| figure | ipamd p50 | p90 | p99 | host-local p50 | floor p50 | host-local / ipamd | target | result |",
    "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ...figures.map((f) => `| ${f.name} | ${ms(f.ipamd.p50)} | ${ms(f.ipamd.p90)} | ${ms(f.ipamd.p99)} | ${ms(f.hostLocal.p50)} | ${ms(f.floor.p50)} | ${f.ratio.toFixed(2)}× | ${f.target} | ${f.detail} |`),
  ];
  return rows.join("\n");
}

try {
  for (const bin of [IPAMD, HOST_LOCAL]) if (!(await Bun.file(bin).exists())) throw new Error(`${bin} is missing (make build; make system-deps)`);
  await buildFloor();
  await startDaemon();
  console.error(`${SAMPLES} interleaved samples per figure; bun ${Bun.version}`);
  const empty = await measure(["VERSION", "ADD", "DEL"], "empty");
  await fill();
  const full = await measure(["ADD", "DEL"], "full");
  const figures = [
    figure("VERSION", empty.VERSION!),
    figure("ADD, empty pool", empty.ADD!, "floor"),
    figure("DEL, empty pool", empty.DEL!),
    figure(`ADD, ${FILL} in use`, full.ADD!, "ratio"),
    figure(`DEL, ${FILL} in use`, full.DEL!),
  ];
  console.log(`\n${table(figures)}\n\nwall time per exec in ms, ${SAMPLES} samples each, interleaved; bun ${Bun.version}, ${navigator.hardwareConcurrency} cpus`);
  mkdirSync(join(ROOT, "bench"), { recursive: true });
  await Bun.write(join(ROOT, "bench/results.json"), `${JSON.stringify({ date: new Date().toISOString(), bun: Bun.version, samples: SAMPLES, fill: FILL, subnet: SUBNET, figures }, null, 2)}\n`);
  console.log("results: bench/results.json");
  process.exitCode = figures.some((f) => f.pass === false) ? 1 : 0;
} catch (err) {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 2;
} finally {
  await cleanup();
}
