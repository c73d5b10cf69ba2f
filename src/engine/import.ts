/**
 * Taking over allocations made elsewhere (a host-local data dir), so a node switching to
 * ipamd never hands out an address a running pod still uses. Idempotent: an address the same
 * attachment already holds is left as it is; one held by another is reported as a conflict.
 * Committed a slice at a time through the apply path, each slice planned right before its
 * commit: a failure loses at most the slice under way, and memory agrees with the store
 * whatever slice fails, so the same import run again completes it.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { formatIp, parseIp } from "../ipam/address.ts";
import { parseRangeSets } from "../ipam/pool.ts";
import type { ImportRequest, ImportResult } from "./requests.ts";
import type { Engine } from "./engine.ts";
import { type ImportItem, planImportCursors, planImportSlice } from "./plan-import.ts";

/** Entries per commit at most (and no more than the store's commit capacity). */
const IMPORT_COMMIT_SLICE = 25;

/** Who holds an address the import wanted, in words for its report. */
async function holderOf(engine: Engine, network: string, ip: string): Promise<string> {
  const holder = (await engine.store.holders(ip)).find((h) => h.space === network);
  return holder ? `${holder.containerID}/${holder.ifname}` : "held for reuse";
}

export async function importAllocations(engine: Engine, req: ImportRequest): Promise<ImportResult> {
  const sets = parseRangeSets(req.ranges ?? []);
  const result: ImportResult = { imported: 0, unchanged: 0, conflicts: [] };
  const fresh: ImportItem[] = [];
  const known: ImportItem[] = [];
  for (const entry of req.entries) {
    const ip = parseIp(entry.ip);
    if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `import: "${entry.ip}" is not an IP address`);
    const item = { ip, containerID: entry.containerID, ifname: entry.ifname };
    (engine.state.takenSet(req.network, ip.family).has(ip.value) ? known : fresh).push(item);
  }
  // Taken already: by this very attachment (imported before), or by another. Asked all at
  // once, so a shared store answers them in shared round trips.
  const holds = await Promise.all(known.map((item) => engine.store.attachment(req.network, item)));
  for (const [i, item] of known.entries()) {
    const text = formatIp(item.ip.value, item.ip.family);
    if (holds[i]!.some((r) => r.space === req.network && r.ip === text)) result.unchanged++;
    else result.conflicts.push({ ip: text, containerID: item.containerID, heldBy: await holderOf(engine, req.network, text) });
  }
  const size = Math.min(IMPORT_COMMIT_SLICE, engine.store.commitCapacity);
  for (let i = 0; i < fresh.length; i += size) {
    const { plan, taken } = planImportSlice(engine.state, fresh.slice(i, i + size), { network: req.network, sets, node: engine.node, now: engine.now() });
    await engine.applier.apply(plan);
    result.imported += plan.allocated.length;
    for (const t of taken) {
      const text = formatIp(t.ip.value, t.ip.family);
      result.conflicts.push({ ip: text, containerID: t.containerID, heldBy: await holderOf(engine, req.network, text) });
    }
  }
  const cursors = (req.cursors ?? []).flatMap(({ rangeSet, ip }) => {
    const parsed = parseIp(ip);
    return parsed ? [{ rangeSet, ip: parsed }] : [];
  });
  const cursorPlan = planImportCursors(req.network, sets, cursors);
  if (cursorPlan.changes.length > 0) await engine.applier.apply(cursorPlan);
  return result;
}
