/**
 * Issue 5's figure: free-address search in a pool that is 99.9% full and fragmented. In
 * process (IpamService over a real sqlite store on disk, durable commits), so it measures
 * the allocator and the store, not process start-up: ADD latency in an empty /16, then the
 * same /16 filled completely through the import path, every 1000th address released
 * (99.9% full, 66 scattered holes), and ADDs that must find those holes.
 */
import { join } from "node:path";
import { IpamService } from "../../src/daemon/ipam-service.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { type Figure, stats, tmp } from "./common.ts";

const RANGES = [[{ subnet: "10.200.0.0/16" }]];
const SIZE = 65_534; // .0.1 … .255.254 minus the gateway .0.1: host-local's rules
const ip = (n: number) => `10.200.${n >> 8}.${n & 255}`;

async function timeAdds(ipam: IpamService, prefix: string, count: number, release: boolean): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const req = { network: "nearly-full", containerID: `${prefix}-${i}`, ifname: "eth0", ranges: RANGES };
    const t = performance.now();
    await ipam.add(req);
    out.push(performance.now() - t);
    if (release) await ipam.del(req);
  }
  return out;
}

export async function nearlyFullFigure(): Promise<Figure> {
  const store = await SqliteStore.open(join(tmp, "nearly-full.db"));
  try {
    const ipam = await IpamService.start(store, { node: "bench" });
    const empty = stats(await timeAdds(ipam, "empty", 500, true));
    // Fill every address (.0.2 … .255.254) through the real service and store path.
    const all = Array.from({ length: SIZE + 1 }, (_, i) => i + 2).filter((n) => n <= 0xfffe);
    for (let i = 0; i < all.length; i += 10_000) {
      await ipam.importAllocations({ network: "nearly-full", ranges: RANGES, entries: all.slice(i, i + 10_000).map((n) => ({ ip: ip(n), containerID: `fill-${n}`, ifname: "eth0" })) });
    }
    const holes = all.filter((_, i) => i % 1000 === 500);
    for (const n of holes) await ipam.del({ network: "nearly-full", containerID: `fill-${n}`, ifname: "eth0" });
    const used = ipam.allocationCount;
    const full = stats(await timeAdds(ipam, "hole", holes.length, false));
    const ratio = full.p50 / empty.p50;
    return {
      section: "5b nearly full",
      name: `ADD in a /16 ${((used / SIZE) * 100).toFixed(1)}% full, fragmented (${holes.length} holes)`,
      unit: "ms p50 (in process)",
      ipamd: full.p50,
      peer: empty.p50,
      peerName: "same /16, empty",
      ratio,
      target: "—",
      pass: null,
      detail: `p99 ${full.p99.toFixed(2)} ms vs ${empty.p99.toFixed(2)} ms empty; every hole found`,
    };
  } finally {
    await store.close();
  }
}
