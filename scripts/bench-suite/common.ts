/**
 * What every section of the benchmark shares: settings (env vars shrink the run), the temp
 * dir, percentiles, the daemon it starts and stops, and calls to it over its unix socket.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "../..");
export const IPAMD = join(ROOT, "dist/ipamd");
export const HOST_LOCAL = "/usr/lib/cni/host-local";
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
/** Exec samples per figure (issue 4: ≥ 300). */
export const SAMPLES = num("BENCH_SAMPLES", 300);
/** Addresses in use for the host-local comparison. */
export const FILL = num("BENCH_FILL", 10_000);
/** The flatness and growth levels; BENCH_MAX=100000 stops the run at 100k. */
export const MAX = num("BENCH_MAX", 1_000_000);
/** ADDs per concurrency level of the throughput figure (each followed by its DEL). */
export const THROUGHPUT_OPS = num("BENCH_OPS", 30_000);
/** A /10: room for a million allocations with a free address after each, and every sample. */
export const SUBNET = "10.64.0.0/10";
export const SUBNET_BASE = 0x0a400000;
export const NETWORK = "benchnet";
export const RANGES = [[{ subnet: SUBNET }]];

export const tmp = mkdtempSync(join(tmpdir(), "ipamd-bench-"));
export const socket = join(tmp, "ipamd.sock");
/** The no-op server's socket (floors.ts): the socket floor, and the round-trip floor's server. */
export const floorSocket = join(tmp, "floor.sock");
/** The no-op server that fdatasyncs each body before answering (floors.ts): the durable floor's. */
export const durableSocket = join(tmp, "durable.sock");
export const dbPath = join(tmp, "ipamd.db");
/** The empty daemon's socket: the peer of the flatness and growth figures (startEmptyDaemon). */
export const emptySocket = join(tmp, "empty.sock");
/** The previous main's daemon (baseline.ts). */
export const baselineSocket = join(tmp, "baseline.sock");

export interface Stats { n: number; p50: number; p90: number; p99: number; mean: number }

/** Nearest-rank percentiles. */
export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export const ipOf = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

let daemon: Subprocess | undefined;

export async function daemonAnswers(timeoutMs = 500, unix = socket): Promise<boolean> {
  try {
    return (await fetch("http://ipamd/v1/status", { unix, signal: AbortSignal.timeout(timeoutMs) })).ok;
  } catch {
    return false;
  }
}

/** Starts `dist/ipamd serve` on the bench's socket and db; resolves with the ms until it first answered. */
export async function startDaemon(): Promise<number> {
  const started = performance.now();
  daemon = Bun.spawn([IPAMD, "serve", "--socket", socket, "--db", dbPath], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const deadline = Date.now() + 60_000;
  while (!(await daemonAnswers(2000))) {
    if (daemon.exitCode !== null) throw new Error(`ipamd serve exited with ${daemon.exitCode}: ${await new Response(daemon.stderr as ReadableStream).text()}`);
    if (Date.now() > deadline) throw new Error("ipamd serve did not answer within 60 s");
    await Bun.sleep(2);
  }
  return performance.now() - started;
}

/**
 * A second `dist/ipamd serve`, same binary, on its own socket and database, that stays empty:
 * every sample's ADD there is DELeted at once. Flatness and growth sample it interleaved with
 * the filled daemon, in the same minutes, so machine drift hits both alike. Stopped by cleanup().
 */
export async function startEmptyDaemon(): Promise<void> {
  const proc = Bun.spawn([IPAMD, "serve", "--socket", emptySocket, "--db", join(tmp, "empty.db")], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  helpers.push(proc);
  const deadline = Date.now() + 60_000;
  while (!(await daemonAnswers(2000, emptySocket))) {
    if (proc.exitCode !== null) throw new Error(`the empty ipamd serve exited with ${proc.exitCode}: ${await new Response(proc.stderr as ReadableStream).text()}`);
    if (Date.now() > deadline) throw new Error("the empty ipamd serve did not answer within 60 s");
    await Bun.sleep(2);
  }
}

export async function stopDaemon(): Promise<void> {
  const d = daemon;
  daemon = undefined;
  if (!d || d.exitCode !== null || d.signalCode !== null) return;
  d.kill("SIGTERM");
  const stopped = await Promise.race([d.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
  if (!stopped) d.kill("SIGKILL");
  await d.exited;
}

/** The daemon's process id (its CPU time is read from /proc). */
export function daemonPid(): number {
  if (!daemon) throw new Error("no daemon");
  return daemon.pid;
}

/**
 * A process's CPU time in ms: the time on CPU of each of its threads (the first field of
 * /proc/PID/task/TID/schedstat, in ns), summed. /proc/PID/stat counts in 10 ms ticks, too
 * coarse for a figure of a few hundred µs per request. A thread that exits between two readings takes its time
 * with it, so a difference is at most what the process used; the daemon's threads live as
 * long as it does.
 */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread exited while we listed them
    }
  }
  return ns / 1e6;
}

/** The daemon's resident set in bytes (VmRSS). */
export function daemonRss(): number {
  if (!daemon) throw new Error("no daemon");
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${daemon.pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

/** Helper processes of the run (the no-op socket server); cleanup() stops them. */
export const helpers: Subprocess[] = [];

export async function cleanup(): Promise<void> {
  for (const proc of helpers.splice(0)) {
    proc.kill();
    await proc.exited;
  }
  await stopDaemon();
  rmSync(tmp, { recursive: true, force: true });
}

/** One call to the daemon; throws unless it answered 2xx. */
export async function call<T>(path: string, body?: unknown, unix = socket): Promise<T> {
  const res = await fetch(`http://ipamd${path}`, {
    unix,
    ...(body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export const liveAllocations = async () => (await call<{ allocations: number }>("/v1/status")).allocations;

/** Runs `task(i)` for i < count on `workers` concurrent workers. */
export async function workers(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await task(next++);
  }));
}

/** One row of the table: ipamd's figure, the peer's (if any), their ratio, the target and the verdict. */
export interface Figure {
  section: string;
  name: string;
  unit: string;
  ipamd: number;
  peer: number | null;
  peerName: string | null;
  ratio: number | null;
  target: string;
  pass: boolean | null;
  detail: string;
  extra?: Record<string, unknown>;
}

export const verdict = (pass: boolean | null, what: string) => (pass === null ? what : `${pass ? "pass" : "MISSED"} (${what})`);
