/**
 * The socket protocol between the plugin (and the admin CLI) and the daemon: JSON over
 * HTTP/1.1 on a unix socket, versioned paths under /v1. Both sides import these schemas, so
 * a request the plugin can build is exactly a request the daemon accepts.
 */
import { array, boolean, check, integer, type InferOutput, literal, maxLength, maxValue, minLength, minValue, nullable, number, object, optional, picklist, pipe, regex, string, union, unknown } from "valibot";
import { RangeSetsInputSchema } from "./ipam/pool.ts";

export { DEFAULT_SOCKET } from "./protocol-command.ts";
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

/** As libcni's ValidateInterfaceName: the kernel's limit is 15 bytes, no '/', ':' or space. */
export function interfaceNameProblem(name: string): string | null {
  if (name === "") return "is empty";
  if (new TextEncoder().encode(name).length > 15) return `"${name}" is longer than 15 bytes`;
  if (name === "." || name === "..") return `"${name}" is not a valid name`;
  if (/[/:\s]/.test(name)) return `"${name}" contains '/', ':' or white space`;
  return null;
}

/** As libcni's ValidateContainerID. */
export function containerIdProblem(id: string): string | null {
  if (id === "") return "is empty";
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(id)) return `"${id}" must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`;
  return null;
}

/**
 * An attachment's identifiers, held to the plugin's own rules (the same functions), so a
 * client speaking the socket directly cannot bring in what CNI_CONTAINERID or CNI_IFNAME may
 * not hold. Their messages are the plugin's; the daemon answers them with its code 4.
 */
export const AttachmentKeySchema = object({
  containerID: pipe(text(256), check((id) => containerIdProblem(id) === null, (issue) => `CNI_CONTAINERID ${containerIdProblem(issue.input as string)}`)),
  ifname: pipe(string(), check((name) => interfaceNameProblem(name) === null, (issue) => `CNI_IFNAME ${interfaceNameProblem(issue.input as string)}`)),
});

/** The fields of an attachment key: a request failing on one is the environment's fault (code 4). */
export const ENVIRONMENT_FIELDS: ReadonlySet<string> = new Set(["containerID", "ifname"]);
export type AttachmentKey = InferOutput<typeof AttachmentKeySchema>;

export const attachment = {
  network: pipe(text(253), regex(NAME_PATTERN, "a network name is letters, digits, '_', '.' and '-', starting with a letter or digit")),
  ...AttachmentKeySchema.entries,
};

/**
 * Named pools, one address from each element; an element that is itself a list is a fallback
 * group — the first of its pools this pod may use that has a free address
 * (`[["v4-a", "v4-b"], "v6"]`).
 */
export const PoolNamesSchema = pipe(array(union([text(253), pipe(array(text(253)), minLength(1), maxLength(16))])), minLength(1), maxLength(16));
export type PoolChoices = InferOutput<typeof PoolNamesSchema>;

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

