/**
 * The daemon alone, through its socket API, without process start-up (sections 4 and 6):
 * clients doing ADD then DEL of a fresh attachment, as fast as they can, with the daemon's
 * durable commits on (synchronous=FULL; every answer after its fsync). Allocations/s counts
 * ADDs answered per second of wall time; latencies are per request, in ms.
 */
import { cpuMs, daemonPid, emptySocket, type Figure, floorSocket, NETWORK, RANGES, socket, type Stats, stats, verdict, workers } from "./common.ts";
import { socketFloorPid } from "./floors.ts";

const headers = { "content-type": "application/json" };
let counter = 0;

async function post(unix: string, path: string, body: string): Promise<void> {
  const res = await fetch(`http://ipamd${path}`, { unix, method: "POST", headers, body });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

export interface Run { clients: number; ops: number; seconds: number; perSecond: number; add: Stats; del: Stats; cpuUsPerPair?: number }

/** `ops` ADD+DEL pairs spread over `clients` concurrent clients: wall time and every latency. */
async function pairs(clients: number, ops: number, unix: string): Promise<{ seconds: number; addMs: number[]; delMs: number[] }> {
  const addMs: number[] = [];
  const delMs: number[] = [];
  const tag = `tp-${process.pid}-${++counter}`;
  const started = performance.now();
  await workers(ops, clients, async (i) => {
    const containerID = `${tag}-${i}`;
    const key = { network: NETWORK, containerID, ifname: "eth0" };
    let t = performance.now();
    await post(unix, "/v1/cni/add", JSON.stringify({ ...key, netns: `/var/run/netns/${containerID}`, ranges: RANGES }));
    addMs.push(performance.now() - t);
    t = performance.now();
    await post(unix, "/v1/cni/del", JSON.stringify(key));
    delMs.push(performance.now() - t);
  });
  return { seconds: (performance.now() - started) / 1000, addMs, delMs };
}

/** `ops` ADD+DEL pairs spread over `clients` concurrent clients. */
export async function addThenDel(clients: number, ops: number, unix = socket): Promise<Run> {
  const { seconds, addMs, delMs } = await pairs(clients, ops, unix);
  return { clients, ops, seconds, perSecond: ops / seconds, add: stats(addMs), del: stats(delMs) };
}

const cpuText = (run: Run) => (run.cpuUsPerPair === undefined ? "?" : run.cpuUsPerPair.toFixed(0));

/** Slices per side in an interleaved comparison: enough that a burst of other load hits both. */
const SLICES = 6;

/**
 * `ops` pairs at `clients` on each of two servers, in alternating slices of the same minutes
 * (which goes first alternates too): on a shared machine, one run after the other measured the
 * neighbours' load as much as the servers (the same 256-client run gave 3,245 and 9,466 pairs/s
 * within two minutes). Each side's rate is its pairs over the sum of its slices' wall time.
 */
export async function interleaved(clients: number, ops: number, a: string, b: string, pids?: [number, number]): Promise<[Run, Run]> {
  const sides = [a, b].map((unix, i) => ({ unix, pid: pids?.[i], seconds: 0, ops: 0, cpuMs: 0, addMs: [] as number[], delMs: [] as number[] }));
  const slice = Math.max(clients, Math.ceil(ops / SLICES));
  for (let round = 0; round < SLICES; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const cpuBefore = side.pid === undefined ? 0 : cpuMs(side.pid);
      const run = await pairs(clients, slice, side.unix);
      if (side.pid !== undefined) side.cpuMs += cpuMs(side.pid) - cpuBefore;
      side.seconds += run.seconds;
      side.ops += slice;
      side.addMs.push(...run.addMs);
      side.delMs.push(...run.delMs);
    }
  }
  const [x, y] = sides.map((side): Run => ({
    clients,
    ops: side.ops,
    seconds: side.seconds,
    perSecond: side.ops / side.seconds,
    add: stats(side.addMs),
    del: stats(side.delMs),
    ...(side.pid === undefined ? {} : { cpuUsPerPair: (side.cpuMs * 1000) / side.ops }),
  }));
  return [x!, y!];
}

/**
 * Section 4: one row per concurrency level, ipamd and the socket floor (floors.ts, already
 * started) with the same clients in alternating slices; the target applies at 256 clients: at
 * least half the pairs per second of a server that does nothing.
 */
export async function throughputFigures(levels: number[], ops: number): Promise<Figure[]> {
  await addThenDel(16, Math.min(2000, ops)); // warm-up: JIT, connections, sqlite's cache
  const figures: Figure[] = [];
  await addThenDel(16, Math.min(2000, ops), floorSocket);
  for (const clients of levels) {
    const [run, peer] = await interleaved(clients, ops, socket, floorSocket, [daemonPid(), socketFloorPid]);
    const targeted = clients === 256;
    const pass = targeted ? run.perSecond >= 0.5 * peer.perSecond : null;
    figures.push({
      section: "4 throughput",
      name: `socket ADD+DEL, ${clients} client${clients === 1 ? "" : "s"}`,
      unit: "allocations/s",
      ipamd: run.perSecond,
      peer: peer.perSecond,
      peerName: "socket floor (no-op server)",
      ratio: run.perSecond / peer.perSecond,
      target: targeted ? "≥ 0.5× socket floor" : "—",
      pass,
      detail: verdict(pass, `${(run.perSecond / peer.perSecond).toFixed(2)}× the socket floor, ${SLICES} alternating slices each; server CPU ${cpuText(run)} vs ${cpuText(peer)} µs per pair; ADD p50 ${run.add.p50.toFixed(2)} ms, p99 ${run.add.p99.toFixed(2)} ms; DEL p99 ${run.del.p99.toFixed(2)} ms; floor ADD p99 ${peer.add.p99.toFixed(2)} ms`),
      extra: { run, floor: peer },
    });
    console.error(`throughput: ${clients} clients, ${Math.round(run.perSecond)} allocations/s (socket floor ${Math.round(peer.perSecond)}), ADD p99 ${run.add.p99.toFixed(2)} ms`);
  }
  return figures;
}

export interface GrowthSide { addP50: number; addP99: number; perSecond: number }
export interface GrowthPoint extends GrowthSide { live: number; empty: GrowthSide }

/**
 * Section 6 at one level: ADD latency of a lone client and the throughput of 64, on the filled
 * daemon and on the empty one (common.ts) in alternating slices of the same minutes (which goes
 * first alternates too), so the two differ by the live allocations, not by when they ran.
 */
export async function growthPoint(live: number, ops: number): Promise<GrowthPoint> {
  const ROUNDS = 4;
  const loneOps = Math.max(50, Math.floor(Math.max(200, Math.floor(ops / 10)) / ROUNDS));
  const busyOps = Math.max(64, Math.floor(ops / ROUNDS));
  const sides = { filled: { unix: socket, addMs: [] as number[], seconds: 0, ops: 0 }, empty: { unix: emptySocket, addMs: [] as number[], seconds: 0, ops: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? [sides.filled, sides.empty] : [sides.empty, sides.filled]) {
      side.addMs.push(...(await pairs(1, loneOps, side.unix)).addMs);
      side.seconds += (await pairs(64, busyOps, side.unix)).seconds;
      side.ops += busyOps;
    }
  }
  const summary = (side: typeof sides.filled): GrowthSide => ({ addP50: stats(side.addMs).p50, addP99: stats(side.addMs).p99, perSecond: side.ops / side.seconds });
  return { live, ...summary(sides.filled), empty: summary(sides.empty) };
}
