/**
 * The socket protocol between the plugin (and the admin CLI) and the daemon: JSON over
 * HTTP/1.1 on a unix socket, versioned paths under /v1. Both sides import these schemas, so
 * a request the plugin can build is exactly a request the daemon accepts.
 */
import { array, boolean, integer, type InferOutput, literal, maxLength, maxValue, minLength, minValue, nullable, number, object, optional, picklist, pipe, regex, string, unknown } from "valibot";
import { RangeSetsInputSchema } from "./ipam/pool.ts";

export const DEFAULT_SOCKET = "/run/ipamd/ipamd.sock";
/** Request bodies above this are refused before parsing: a netconf is a few KiB at most. */
export const MAX_BODY_BYTES = 1 << 20;

export const Paths = {
  add: "/v1/cni/add",
  del: "/v1/cni/del",
  check: "/v1/cni/check",
  gc: "/v1/cni/gc",
  status: "/v1/status",
} as const;

export const text = (max: number) => pipe(string(), minLength(1), maxLength(max));

/** libcni's rule for network names (and ours for pool names): they become store keys. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export const AttachmentKeySchema = object({
  containerID: text(256),
  ifname: text(15),
});
export type AttachmentKey = InferOutput<typeof AttachmentKeySchema>;

export const attachment = {
  network: pipe(text(253), regex(NAME_PATTERN, "a network name is letters, digits, '_', '.' and '-', starting with a letter or digit")),
  ...AttachmentKeySchema.entries,
};

export const PoolNamesSchema = pipe(array(text(253)), minLength(1), maxLength(16));

export const AllocatedIpSchema = object({
  family: picklist([4, 6]),
  address: string(),
  prefix: pipe(number(), integer(), minValue(0), maxValue(128)),
  gateway: optional(string()),
});
export type AllocatedIp = InferOutput<typeof AllocatedIpSchema>;

export const IpsResponseSchema = object({ ips: array(AllocatedIpSchema) });
export type IpsResponse = InferOutput<typeof IpsResponseSchema>;

/** The answer to calls that only succeed or fail (DEL). */
export const EmptyResponseSchema = object({});

export const GcResponseSchema = object({ released: array(string()) });
export type GcResponse = InferOutput<typeof GcResponseSchema>;

export const StatusResponseSchema = object({ version: string(), allocations: number() });
export type StatusResponse = InferOutput<typeof StatusResponseSchema>;

/** Every failure on the socket: the CNI error object without cniVersion. */
export const ErrorBodySchema = object({
  code: number(),
  msg: string(),
  details: optional(string()),
});
export type ErrorBody = InferOutput<typeof ErrorBodySchema>;

