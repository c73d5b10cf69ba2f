/**
 * Admin reads against pod starts (the reliability issue): a plugin ADD's p99 while twelve
 * clients read allocations as fast as they can, each asking for 100,000 at once (the daemon
 * answers its largest page), beside the same ADD with no readers — blocks of each taken in
 * turn, so the machine's drift hits both alike. The verdict: the loaded p99 stays within a
 * tenth of the plugin's 2.5 s deadline, far from the code 11 it once caused.
 */
import { type Figure, socket, stats, verdict } from "./common.ts";
import { measure } from "./exec.ts";

const READERS = 12;

/** Twelve readers in a loop until stop() resolves; returns how many pages they read. */
function startReaders(): { stop: () => Promise<number> } {
  let running = true;
  let pages = 0;
  const loops = Array.from({ length: READERS }, async () => {
    while (running) {
      const res = await fetch("http://ipamd/v1/allocations?limit=100000", { unix: socket });
      await res.arrayBuffer();
      pages++;
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return pages;
    },
  };
}

export async function adminLoadFigure(inUse: number, blocks = 10, perBlock = 20): Promise<Figure> {
  const quiet: number[] = [];
  const loaded: number[] = [];
  let pages = 0;
  for (let b = 0; b < blocks; b++) {
    // Each ADD DELeted at once (its DEL not timed here): the fill stays what it was.
    quiet.push(...(await measure(["ADD", "DEL"], ["ipamd"], "quiet", perBlock)).ADD!.ipamd!);
    const readers = startReaders();
    loaded.push(...(await measure(["ADD", "DEL"], ["ipamd"], "loaded", perBlock)).ADD!.ipamd!);
    pages += await readers.stop();
  }
  const q = stats(quiet);
  const l = stats(loaded);
  const pass = l.p99 < 250;
  return {
    section: "7 admin reads",
    name: `plugin ADD p99 under ${READERS} concurrent maximal admin reads, ${inUse.toLocaleString("en")} in use`,
    unit: "ms p99",
    ipamd: l.p99,
    peer: q.p99,
    peerName: "same ADD, no readers",
    ratio: l.p99 / q.p99,
    target: "< 250 ms (a tenth of the 2.5 s deadline)",
    pass,
    detail: verdict(pass, `p50 ${l.p50.toFixed(2)} vs ${q.p50.toFixed(2)} ms; ${pages} pages of 5,000 read meanwhile`),
    extra: { loaded: l, quiet: q, pages },
  };
}
