/**
 * The periodic sweep: reclaim leaks (and, on a shared store, give up gone nodes' empty
 * blocks), then drop history past its retention. The next run is scheduled only when this one
 * is done, so sweeps never overlap; one that fails is logged and the next one still runs.
 */
import type { ConsolaInstance } from "consola/core";
import type { Store } from "../store/store.ts";
import type { Reclaimer } from "./reclaim.ts";

export interface SweepSchedule {
  intervalMs: number;
  historyRetentionMs: number;
}

export function scheduleSweeps(reclaimer: Reclaimer, store: Store, schedule: SweepSchedule, log: ConsolaInstance): { stop(): void } {
  let timer: Timer | undefined;
  let stopped = false;
  const sweep = async () => {
    try {
      const result = await reclaimer.sweep();
      for (const r of result.reclaimed) log.info(`reclaimed ${r.ip}`, { network: r.network, containerID: r.containerID, ifname: r.ifname, reason: r.reason });
      const pruned = await store.pruneHistory(Date.now() - schedule.historyRetentionMs);
      if (pruned > 0) log.debug("pruned history", { events: pruned });
    } catch (err) {
      log.error("leak sweep failed", err);
    }
    if (!stopped) timer = setTimeout(sweep, schedule.intervalMs);
  };
  if (schedule.intervalMs > 0) timer = setTimeout(sweep, Math.min(schedule.intervalMs, 5_000));
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
