/**
 * Admin reads against pod starts (the reliability issue): ADD p99 while twelve clients read
 * allocations as fast as they can, each asking for 100,000 at once (the daemon answers its
 * largest page), beside the same ADD with no readers — blocks of each taken in turn, so the
 * machine's drift hits both alike. Two figures: the daemon's answer at the socket, which the
 * read gate (src/daemon/read-gate.ts) bounds to about one page read, and the plugin exec a
 * pod start sees, which also pays for the CPU the readers and the daemon's page writing take
 * from the machine. The readers run in a process of their own, so receiving pages does not
 * delay this one noticing the plugin's exit.
 */
import { join } from "node:path";
import { ALLOCATION_PAGE } from "../../src/protocol-admin.ts";
import { call, type Figure, helpers, NETWORK, RANGES, socket, stats, verdict } from "./common.ts";
import { measure } from "./exec.ts";

const READERS = 12;

/** Twelve readers in a loop (another process) until stop() resolves; returns how many pages they read. */
async function startReaders(): Promise<{ stop: () => Promise<number> }> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "admin-readers.ts"), socket, String(READERS)], { stdout: "pipe", stderr: "inherit" });
  helpers.push(proc);
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("admin readers exited before reading");
    out += value;
  }
  return {
    stop: async () => {
      proc.kill("SIGTERM");
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        out += value;
      }
      await proc.exited;
      return Number(out.trim().split("\n").at(-1));
    },
  };
}

/** One socket ADD (then its DEL, untimed), the way the plugin asks: ms to the answer. */
async function socketAdd(i: number): Promise<number> {
  const key = { network: NETWORK, containerID: `admin-load-${i}`, ifname: "eth0" };
  const started = performance.now();
  await call("/v1/cni/add", { ...key, ranges: RANGES });
  const took = performance.now() - started;
  await call("/v1/cni/del", key);
  return took;
}

type Samples = { quiet: number[]; loaded: number[] };

function loadFigure(name: string, s: Samples, target: string, limitMs: number, pages: number): Figure {
  const q = stats(s.quiet);
  const l = stats(s.loaded);
  const pass = l.p99 < limitMs;
  return {
    section: "7 admin reads",
    name,
    unit: "ms p99",
    ipamd: l.p99,
    peer: q.p99,
    peerName: "same ADD, no readers",
    ratio: l.p99 / q.p99,
    target,
    pass,
    detail: verdict(pass, `p50 ${l.p50.toFixed(2)} vs ${q.p50.toFixed(2)} ms; ${pages} pages of ${ALLOCATION_PAGE.max.toLocaleString("en")} read meanwhile`),
    extra: { loaded: l, quiet: q, pages },
  };
}

/**
 * Blocks with and without readers, taken in turn. Each ADD is DELeted at once (its DEL not
 * timed): the fill stays what it was.
 */
export async function adminLoadFigures(inUse: number, blocks = 10, perBlock = 20): Promise<Figure[]> {
  const socketAdds: Samples = { quiet: [], loaded: [] };
  const pluginAdds: Samples = { quiet: [], loaded: [] };
  let pages = 0;
  let n = 0;
  const sample = async (into: keyof Samples) => {
    for (let i = 0; i < perBlock; i++) socketAdds[into].push(await socketAdd(n++));
    pluginAdds[into].push(...(await measure(["ADD", "DEL"], ["ipamd"], `admin-${into}`, perBlock)).ADD!.ipamd!);
  };
  for (let b = 0; b < blocks; b++) {
    await sample("quiet");
    const readers = await startReaders();
    await sample("loaded");
    pages += await readers.stop();
  }
  const under = `under ${READERS} concurrent maximal admin reads, ${inUse.toLocaleString("en")} in use`;
  return [
    loadFigure(`daemon's ADD answer (socket) ${under}`, socketAdds, "< 50 ms (about one page read)", 50, pages),
    loadFigure(`plugin ADD (exec) ${under}`, pluginAdds, "< 500 ms (a fifth of the 2.5 s deadline)", 500, pages),
  ];
}
