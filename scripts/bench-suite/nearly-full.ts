/**
 * Issue 5's figure: free-address search in a pool that is 99.9% full and fragmented. In
 * process (Engine over real sqlite stores on disk, durable commits), so it measures the
 * allocator and the store, not process start-up. Two /16s: one filled completely through the
 * import path with every 1000th address released again (99.9% full, 66 scattered holes),
 * one empty. ADDs alternate between them in the same loop (full, empty, full, …), each
 * followed by its DEL, untimed: the full pool stays 99.9% full and every ADD there must find
 * the next hole after the last one handed out.
 */
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { type Figure, stats, tmp, verdict } from "./common.ts";

const RANGES = [[{ subnet: "10.200.0.0/16" }]];
const SIZE = 65_534; // .0.1 … .255.254 minus the gateway .0.1: host-local's rules
const ip = (n: number) => `10.200.${n >> 8}.${n & 255}`;
const SAMPLES = 500;
/** Finding a free address must not cost more in a nearly full pool than in an empty one. */
export const NEARLY_FULL_MAX = 1.2;

/** One ADD, timed, then its DEL; returns the ms of the ADD. */
async function addThenDel(ipam: Engine, containerID: string): Promise<number> {
  const req = { network: "nearly-full", containerID, ifname: "eth0", ranges: RANGES };
  const t = performance.now();
  await ipam.add(req);
  const ms = performance.now() - t;
  await ipam.del(req);
  return ms;
}

export async function nearlyFullFigure(): Promise<Figure> {
  const stores = [await SqliteStore.open(join(tmp, "nearly-full.db")), await SqliteStore.open(join(tmp, "nearly-empty.db"))] as const;
  try {
    const [full, empty] = await Promise.all(stores.map((store) => Engine.start(store, { node: "bench" })));
    // Fill every address (.0.2 … .255.254) through the real service and store path.
    const all = Array.from({ length: SIZE + 1 }, (_, i) => i + 2).filter((n) => n <= 0xfffe);
    for (let i = 0; i < all.length; i += 10_000) {
      await full!.importAllocations({ network: "nearly-full", ranges: RANGES, entries: all.slice(i, i + 10_000).map((n) => ({ ip: ip(n), containerID: `fill-${n}`, ifname: "eth0" })) });
    }
    const holes = all.filter((_, i) => i % 1000 === 500);
    for (const n of holes) await full!.del({ network: "nearly-full", containerID: `fill-${n}`, ifname: "eth0" });
    const used = full!.allocationCount;
    for (let i = 0; i < 20; i++) for (const ipam of [full!, empty!]) await addThenDel(ipam, `warm-${i}`);
    const samples = { full: [] as number[], empty: [] as number[] };
    for (let i = 0; i < SAMPLES; i++) {
      samples.full.push(await addThenDel(full!, `hole-${i}`));
      samples.empty.push(await addThenDel(empty!, `empty-${i}`));
    }
    if (full!.allocationCount !== used) throw new Error(`the nearly full pool changed: ${used} in use before the samples, ${full!.allocationCount} after`);
    const [f, e] = [stats(samples.full), stats(samples.empty)];
    const ratio = f.p50 / e.p50;
    return {
      section: "5b nearly full",
      name: `ADD in a /16 ${((used / SIZE) * 100).toFixed(1)}% full, fragmented (${holes.length} holes)`,
      unit: "ms p50 (in process)",
      ipamd: f.p50,
      peer: e.p50,
      peerName: "an empty /16, same loop",
      ratio,
      target: `≤ ${NEARLY_FULL_MAX}× empty`,
      pass: ratio <= NEARLY_FULL_MAX,
      detail: verdict(ratio <= NEARLY_FULL_MAX, `${ratio.toFixed(2)}×; p99 ${f.p99.toFixed(2)} ms vs ${e.p99.toFixed(2)} ms empty; ${SAMPLES} ADDs each`),
    };
  } finally {
    for (const store of stores) await store.close();
  }
}
