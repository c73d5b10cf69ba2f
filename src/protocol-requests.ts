/**
 * The bodies the plugin sends (ADD, DEL, CHECK, GC), as the daemon validates them. The plugin
 * only builds these (it imports the types, which cost nothing at run time); building the
 * schemas themselves is the daemon's business, so a plugin exec does not pay for it.
 */
import { array, type InferOutput, maxLength, object, optional, pipe, string } from "valibot";
import { RangeSetsInputSchema } from "./ipam/pool.ts";
import { AttachmentKeySchema, attachment, PoolNamesSchema, text } from "./protocol.ts";
import type { CommandHead } from "./protocol-command.ts";

export const PodSchema = object({
  namespace: optional(pipe(string(), maxLength(253))),
  name: optional(pipe(string(), maxLength(253))),
  uid: optional(pipe(string(), maxLength(64))),
});
export type Pod = InferOutput<typeof PodSchema>;

export const AddRequestSchema = object({
  ...attachment,
  netns: optional(pipe(string(), maxLength(4096))),
  /** host-local style inline range sets; one address from each. */
  ranges: optional(RangeSetsInputSchema),
  /** Named pools of the daemon's config; one address from each. */
  pools: optional(PoolNamesSchema),
  /** Static addresses (CNI_ARGS IP=, runtimeConfig.ips, args.cni.ips), without prefix. */
  requestedIps: optional(pipe(array(text(64)), maxLength(64))),
  pod: optional(PodSchema),
});
export type AddRequest = InferOutput<typeof AddRequestSchema>;

export const DelRequestSchema = object(attachment);
export type DelRequest = InferOutput<typeof DelRequestSchema>;

export const CheckRequestSchema = object(attachment);
export type CheckRequest = InferOutput<typeof CheckRequestSchema>;

export const GcRequestSchema = object({
  network: attachment.network,
  validAttachments: pipe(array(AttachmentKeySchema), maxLength(1_000_000)),
});
export type GcRequest = InferOutput<typeof GcRequestSchema>;

/** A CNI variable as forwarded: libcni's values are short; a netns path is at most PATH_MAX. */
const envValue = optional(pipe(string(), maxLength(64 * 1024)));

/**
 * The head of a forwarded command (protocol-command.ts): the plugin's CNI variables and, for an
 * ADD, its resolvConf's text (64 KiB at most, as the plugin reads it).
 */
export const CommandHeadSchema = object({
  env: object({ CNI_COMMAND: envValue, CNI_CONTAINERID: envValue, CNI_NETNS: envValue, CNI_IFNAME: envValue, CNI_ARGS: envValue, CNI_PATH: envValue }),
  resolvConf: optional(pipe(string(), maxLength(64 * 1024))),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// The plugin builds what the daemon validates: tsc fails here if the two shapes part.
true satisfies Same<InferOutput<typeof CommandHeadSchema>, CommandHead>;
