/**
 * Section 5, memory and restart: the daemon's RSS (VmRSS) with 0 and N live allocations, per
 * allocation, and the time from spawning `ipamd serve` on a database holding N allocations
 * to its first answered request (the in-memory index is rebuilt from the store before the
 * socket opens, so the first answer means ready to allocate).
 */
import { call, daemonRss, type Figure, startDaemon, stopDaemon, verdict } from "./common.ts";

/** RSS once the daemon has answered a few requests and had a second to settle. */
export async function settledRss(): Promise<number> {
  for (let i = 0; i < 5; i++) await call("/v1/status");
  await Bun.sleep(1000);
  return daemonRss();
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function rssFigure(name: string, live: number, rss: number, rss0: number): Figure {
  const perAllocation = (rss - rss0) / live;
  const pass = perAllocation <= 200;
  return {
    section: "5 memory",
    name,
    unit: "bytes/allocation",
    ipamd: perAllocation,
    peer: null,
    peerName: null,
    ratio: null,
    target: "≤ 200 B/allocation",
    pass,
    detail: verdict(pass, `RSS ${mb(rss)} with ${live.toLocaleString("en")} vs ${mb(rss0)} with 0`),
    extra: { rss, rss0, live },
  };
}

/** Stops the daemon and starts it again on the same database; the first answer's delay. */
export async function restartFigure(live: number): Promise<{ figure: Figure; ms: number }> {
  await stopDaemon();
  const ms = await startDaemon();
  const pass = ms <= 1000;
  return {
    ms,
    figure: {
      section: "5 restart",
      name: `serve → first answer, ${live.toLocaleString("en")} on disk`,
      unit: "ms",
      ipamd: ms,
      peer: null,
      peerName: null,
      ratio: null,
      target: "≤ 1000 ms",
      pass,
      detail: verdict(pass, `${Math.round(ms)} ms`),
    },
  };
}
