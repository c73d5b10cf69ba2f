/**
 * A commit's changes, sorted by the object each one is carried out in: an address's block (the
 * block of its space that contains it), a claim's block, a pod's binding's block, a namespace's
 * usage object. A commit whose changes land in one object is one write; one that spans several
 * is written by the pending/primary protocol (see working-block.ts).
 */
import { parseCidr } from "../../ipam/address.ts";
import { AttachmentHeld, type Change } from "../store.ts";
import type { BlockCache } from "./cache.ts";
import { type BlockPrefixes, blockCidr, blockName, usageName } from "./names.ts";
import { type UsageAdd, usageAdds } from "./usage.ts";
import type { BlockChange } from "./working-block.ts";

export interface BlockPart {
  kind: "block";
  name: string;
  space: string;
  cidr: string;
  changes: BlockChange[];
  /** For each change, its index in the caller's changes (-1: added by the store, no event). */
  indexes: number[];
}

export interface UsagePart {
  kind: "usage";
  name: string;
  add: UsageAdd;
}

export type Part = BlockPart | UsagePart;

export interface Translated {
  parts: Map<string, Part>;
  cursors: [rangeSet: string, ip: string][];
}

function blockPart(parts: Map<string, Part>, space: string, cidr: string): BlockPart {
  const name = blockName(space, cidr);
  let part = parts.get(name);
  if (!part) parts.set(name, (part = { kind: "block", name, space, cidr, changes: [], indexes: [] }));
  return part as BlockPart;
}

function addressPart(parts: Map<string, Part>, space: string, ip: string, prefixes: BlockPrefixes): BlockPart {
  return blockPart(parts, space, blockCidr(ip, prefixes).cidr);
}

/** The block a claimed CIDR is: it must be one block of this store's size. */
function claimedPart(parts: Map<string, Part>, space: string, cidr: string, prefixes: BlockPrefixes): BlockPart {
  const parsed = parseCidr(cidr);
  const size = parsed?.family === 6 ? prefixes.v6 : prefixes.v4;
  if (!parsed || parsed.prefix !== size) throw new Error(`block ${cidr} is not a /${size} block of this store: the daemons' block sizes must agree with the store's`);
  return blockPart(parts, space, cidr);
}

export function translate(changes: Change[], cache: BlockCache, prefixes: BlockPrefixes): Translated {
  const parts = new Map<string, Part>();
  const cursors: [string, string][] = [];
  changes.forEach((change, index) => {
    let part: BlockPart | undefined;
    switch (change.op) {
      case "allocate":
      case "release":
        part = addressPart(parts, change.record.space, change.record.ip, prefixes);
        break;
      case "hold":
      case "unhold":
        part = addressPart(parts, change.hold.space, change.hold.ip, prefixes);
        break;
      case "bind": {
        const { space, pod, ip } = change.binding;
        part = addressPart(parts, space, ip, prefixes);
        // A pod has one binding per space: one kept in another block (its old address's) goes.
        const old = cache.bindingBlock(space, pod);
        const oldBlock = old ? cache.block(old)?.view : undefined;
        if (old && old !== part.name && oldBlock) {
          const other = blockPart(parts, space, oldBlock.cidr);
          other.changes.push({ op: "unbind", space, pod });
          other.indexes.push(-1);
        }
        break;
      }
      case "unbind": {
        const at = cache.bindingBlock(change.space, change.pod);
        const view = at ? cache.block(at)?.view : undefined;
        if (!view) return; // no binding: nothing to do
        part = blockPart(parts, change.space, view.cidr);
        break;
      }
      case "claim":
      case "unclaim":
        part = claimedPart(parts, change.block.space, change.block.cidr, prefixes);
        break;
      case "cursor":
        cursors.push([change.rangeSet, change.ip]);
        return;
      case "limit":
        return; // counted below, against what the commit allocates
      case "unheld":
        // As the watch-fed cache has it (a read before the commit was no stronger), before
        // any change of this commit: an ADD repeated under the engine's attachment lock.
        if (cache.ofAttachment(change.network, change.containerID, change.ifname).length > 0) throw new AttachmentHeld(change);
        return;
    }
    if (!part) return;
    part.changes.push(change as BlockChange);
    part.indexes.push(index);
  });
  for (const add of usageAdds(changes)) parts.set(usageName(add.pool, add.namespace), { kind: "usage", name: usageName(add.pool, add.namespace), add });
  return { parts, cursors };
}
