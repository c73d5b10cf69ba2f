/**
 * Leak reclamation. A container that dies without a DEL leaves its addresses allocated; the
 * tell-tale is that its network namespace is gone. The sweep reclaims an allocation only
 * when its netns path has been seen missing for longer than the grace period AND the
 * allocation is older than the grace period, so a pod being set up (netns not yet visible
 * to this mount namespace, or a slow runtime) is never touched. Allocations without a netns
 * path are left alone: nothing proves them dead. CNI GC, `ipamd gc` and the periodic sweep
 * all release through the engine, so every path writes the same history.
 */
import type { AllocationRecord } from "../store/store.ts";
import type { Engine } from "../engine/engine.ts";

export interface ReclaimOptions {
  graceMs: number;
  now: () => number;
  /** Whether a netns path exists; injectable so tests can use real temp paths or real netns. */
  exists?: (path: string) => Promise<boolean>;
  /**
   * Only netns paths under these directories are judged (the daemon must see them, e.g. the
   * host's /var/run/netns mounted in); any other path (/proc/PID/ns/net, a runtime's own
   * directory) proves nothing by being absent here and is left alone. Unset: every path.
   */
  netnsDirs?: string[];
}

export interface SweepResult {
  /** Addresses reclaimed (or that would be, in a dry run), with why. */
  reclaimed: { ip: string; network: string; containerID: string; ifname: string; netns: string; reason: string }[];
  /** Attachments whose netns is missing but still within the grace period. */
  pending: number;
  dryRun: boolean;
  /** Shared store: empty blocks of vanished nodes given up by this sweep. */
  blocksReleased?: string[];
}

async function pathExists(path: string): Promise<boolean> {
  const { stat } = await import("node:fs/promises");
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => err.code !== "ENOENT" && err.code !== "ENOTDIR", // unreadable ≠ gone
  );
}

export class Reclaimer {
  /** When each netns path was first seen missing. */
  private readonly missingSince = new Map<string, number>();
  private readonly exists: (path: string) => Promise<boolean>;

  constructor(
    private readonly engine: Engine,
    private readonly options: ReclaimOptions,
  ) {
    this.exists = options.exists ?? pathExists;
  }

  async sweep(dryRun = false): Promise<SweepResult> {
    const now = this.options.now();
    const result: SweepResult = { reclaimed: [], pending: 0, dryRun };
    const byNetns = Map.groupBy(await this.engine.store.netnsAllocations(this.engine.node), (r) => r.netns!);
    if (this.engine.sharing.blocks && !dryRun) result.blocksReleased = await this.engine.releaseAbandonedBlocks();
    for (const path of this.missingSince.keys()) if (!byNetns.has(path)) this.missingSince.delete(path);
    const dirs = this.options.netnsDirs?.map((d) => (d.endsWith("/") ? d : `${d}/`));
    for (const [netns, records] of byNetns) {
      if (dirs && !dirs.some((d) => netns.startsWith(d))) continue;
      if (await this.exists(netns)) {
        this.missingSince.delete(netns);
        continue;
      }
      const since = this.missingSince.get(netns) ?? now;
      if (!this.missingSince.has(netns)) this.missingSince.set(netns, now);
      const due = records.filter((r) => now - since >= this.options.graceMs && now - r.createdAt >= this.options.graceMs);
      result.pending += records.length - due.length;
      if (due.length === 0) continue;
      const seconds = Math.round((now - since) / 1000);
      const reason = `netns ${netns} missing for ${seconds}s (grace ${Math.round(this.options.graceMs / 1000)}s)`;
      if (!dryRun) await this.engine.releaseRecords(due, reason, "reclaimed");
      result.reclaimed.push(...due.map((r: AllocationRecord) => ({ ip: r.ip, network: r.network, containerID: r.containerID, ifname: r.ifname, netns, reason })));
    }
    return result;
  }
}
