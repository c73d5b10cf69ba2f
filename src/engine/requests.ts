/**
 * What the engine is asked, and how it answers: plain shapes, so the engine depends on nothing
 * above it. The daemon's routes validate the socket's bodies with the protocol's schemas
 * (protocol*.ts), whose outputs have exactly these shapes, and hand them down.
 */
import type { Family } from "../ipam/address.ts";
import type { RangeSetsInput } from "../ipam/pool.ts";
import type { PoolChoice } from "../ipam/pool-choice.ts";
import type { AttachmentKey } from "../store/store.ts";

/** An attachment: the network's name, the container and its interface. */
export interface Attachment extends AttachmentKey {
  network: string;
}

export interface AddRequest extends Attachment {
  netns?: string;
  /** The netconf's inline range sets; one address from each. */
  ranges?: RangeSetsInput;
  /** Named pools of the daemon's config; one address from each element (a list: a fallback group). */
  pools?: PoolChoice[];
  /** Static addresses, without prefix. */
  requestedIps?: string[];
  /** The pod, from the runtime's K8S_POD_* arguments. */
  pod?: { namespace?: string; name?: string; uid?: string };
}

export interface GcRequest {
  network: string;
  /** The attachments the runtime still has: every other one of the network is stale. */
  validAttachments: AttachmentKey[];
}

export interface ImportRequest {
  network: string;
  ranges?: RangeSetsInput;
  entries: { ip: string; containerID: string; ifname: string }[];
  /** host-local's last_reserved_ip.N: where allocation continues in range set N. */
  cursors?: { rangeSet: number; ip: string }[];
}

export interface ImportResult {
  imported: number;
  unchanged: number;
  conflicts: { ip: string; containerID: string; heldBy: string }[];
}

/** One address of an answer: what a CNI result's `ips` entry is made from. */
export interface Answer {
  family: Family;
  address: string;
  prefix: number;
  gateway?: string;
}
