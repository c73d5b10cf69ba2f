/**
 * Taking over allocations made elsewhere (a host-local data dir), so a node switching to
 * ipamd never hands out an address a running pod still uses. Idempotent: an address the same
 * attachment already holds is left as it is; one held by another is reported as a conflict.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { formatIp, parseIp } from "../ipam/address.ts";
import { parseRangeSets } from "../ipam/pool.ts";
import type { ImportRequest, ImportResponse } from "../protocol-admin.ts";
import { type AllocationRecord, type Change, cursorKey, type Store } from "../store/store.ts";
import type { AddressIndex } from "./address-index.ts";

/** Entries per commit at most: a failure loses at most one slice of progress, never a committed one. */
const IMPORT_COMMIT_SLICE = 25;

export interface ImportContext {
  index: AddressIndex;
  store: Store;
  node: string;
  now: number;
}

export async function importAllocations({ index, store, node, now }: ImportContext, req: ImportRequest): Promise<ImportResponse> {
  const sets = parseRangeSets(req.ranges ?? []);
  const result: ImportResponse = { imported: 0, unchanged: 0, conflicts: [] };
  const changes: Change[] = [];
  const picked: { family: 4 | 6; value: bigint }[] = [];
  for (const entry of req.entries) {
    const ip = parseIp(entry.ip);
    if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `import: "${entry.ip}" is not an IP address`);
    const text = formatIp(ip.value, ip.family);
    if (!index.pick(req.network, ip.family, ip.value)) {
      const holder = (await store.holders(text)).find((h) => h.space === req.network);
      if (holder && holder.containerID === entry.containerID && holder.ifname === entry.ifname) result.unchanged++;
      else result.conflicts.push({ ip: text, containerID: entry.containerID, heldBy: holder ? `${holder.containerID}/${holder.ifname}` : "held for reuse" });
      continue;
    }
    picked.push(ip);
    const set = sets.find((s) => s.family === ip.family && s.ranges.some((r) => ip.value >= r.start && ip.value <= r.end));
    const range = set?.ranges.find((r) => ip.value >= r.start && ip.value <= r.end);
    const record: AllocationRecord = {
      space: req.network,
      network: req.network,
      ip: text,
      family: ip.family,
      prefix: range ? range.subnet.prefix : ip.family === 4 ? 32 : 128,
      gateway: range?.gateway == null ? null : formatIp(range.gateway, ip.family),
      pool: set ? `${req.network}|${set.key}` : `${req.network}|imported`,
      containerID: entry.containerID,
      ifname: entry.ifname,
      netns: null,
      podNamespace: null,
      podName: null,
      podUid: null,
      node,
      createdAt: now,
      static: false,
    };
    changes.push({ op: "allocate", record, kind: "imported", cause: "import host-local" });
  }
  for (const { rangeSet, ip } of req.cursors ?? []) {
    const set = sets[rangeSet];
    const parsed = parseIp(ip);
    if (!set || !parsed) continue;
    changes.push({ op: "cursor", pool: cursorKey(req.network, set.key), ip: formatIp(parsed.value, parsed.family) });
  }
  // Committed in slices: a cluster store caps the operations of one transaction (see commitCapacity).
  // Each slice is settled in memory as soon as it is durable, so an import that fails partway
  // leaves memory agreeing with the store: what was committed stays taken, the rest is free,
  // and running the same import again finds the committed part unchanged.
  let settled = 0;
  try {
    const size = Math.min(IMPORT_COMMIT_SLICE, store.commitCapacity);
    for (let i = 0; i < changes.length; i += size) {
      const slice = changes.slice(i, i + size);
      await store.commit(slice);
      for (const change of slice) {
        if (change.op === "allocate") {
          const ip = picked[settled++]!;
          index.settle(req.network, ip.family, ip.value, true);
          index.count++;
          result.imported++;
        } else if (change.op === "cursor") {
          index.cursors.set(change.pool, parseIp(change.ip)!.value);
        }
      }
    }
  } finally {
    for (const ip of picked.slice(settled)) index.settle(req.network, ip.family, ip.value, false);
  }
  return result;
}