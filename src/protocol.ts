/**
 * The socket protocol between the plugin (and the admin CLI) and the daemon: JSON over
 * HTTP/1.1 on a unix socket, versioned paths under /v1. Both sides import these schemas, so
 * a request the plugin can build is exactly a request the daemon accepts.
 */
import { array, boolean, integer, type InferOutput, literal, maxLength, maxValue, minLength, minValue, nullable, number, object, optional, picklist, pipe, string, unknown } from "valibot";
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

const text = (max: number) => pipe(string(), minLength(1), maxLength(max));

export const AttachmentKeySchema = object({
  containerID: text(256),
  ifname: text(15),
});
export type AttachmentKey = InferOutput<typeof AttachmentKeySchema>;

const attachment = {
  network: text(253),
  ...AttachmentKeySchema.entries,
};

export const PodSchema = object({
  namespace: optional(pipe(string(), maxLength(253))),
  name: optional(pipe(string(), maxLength(253))),
  uid: optional(pipe(string(), maxLength(64))),
});
export type Pod = InferOutput<typeof PodSchema>;

export const PoolNamesSchema = pipe(array(text(253)), minLength(1), maxLength(16));

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

export const DelRequestSchema = object(attachment);
export type DelRequest = InferOutput<typeof DelRequestSchema>;

export const CheckRequestSchema = object(attachment);
export type CheckRequest = InferOutput<typeof CheckRequestSchema>;

export const GcRequestSchema = object({
  network: attachment.network,
  validAttachments: pipe(array(AttachmentKeySchema), maxLength(1_000_000)),
});
export type GcRequest = InferOutput<typeof GcRequestSchema>;

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

export const Admin = {
  pools: "/v1/pools",
  reload: "/v1/reload",
} as const;

export const PoolReportSchema = object({
  name: string(),
  /** `named` (daemon config), `node-subnet` (this node's part of a supernet pool) or `inline` (netconf ranges). */
  kind: picklist(["named", "node-subnet", "inline"]),
  family: picklist([4, 6]),
  /** The pool as configured (named) or its canonical ranges (inline). */
  definition: unknown(),
  /** Counts as decimal strings: an IPv6 pool's size does not fit a JSON number. */
  size: string(),
  used: number(),
  free: string(),
  utilization: number(),
  /** This node's subnet of a supernet pool. */
  nodeSubnet: optional(string()),
  nodeSubnets: optional(array(object({ node: string(), subnet: string() }))),
  cooling: number(),
  stickyParked: number(),
  orphans: object({ count: number(), sample: array(string()) }),
});
export type PoolReport = InferOutput<typeof PoolReportSchema>;

export const PoolsResponseSchema = object({ pools: array(PoolReportSchema) });
export const ReloadResponseSchema = object({ pools: array(string()) });

export const AdminPaths = {
  allocations: "/v1/allocations",
  history: "/v1/history",
  gc: "/v1/gc",
  import: "/v1/import",
  metrics: "/metrics",
} as const;

export const AllocationSchema = object({
  space: string(),
  network: string(),
  ip: string(),
  family: picklist([4, 6]),
  prefix: number(),
  gateway: nullable(string()),
  pool: string(),
  containerID: string(),
  ifname: string(),
  netns: nullable(string()),
  podNamespace: nullable(string()),
  podName: nullable(string()),
  podUid: nullable(string()),
  node: string(),
  createdAt: number(),
  static: boolean(),
});
export type Allocation = InferOutput<typeof AllocationSchema>;

export const HistoryEventSchema = object({
  id: number(),
  at: number(),
  kind: picklist(["allocated", "static", "imported", "released", "reclaimed"]),
  network: string(),
  ip: string(),
  containerID: nullable(string()),
  ifname: nullable(string()),
  podNamespace: nullable(string()),
  podName: nullable(string()),
  podUid: nullable(string()),
  cause: nullable(string()),
});
export type HistoryEventBody = InferOutput<typeof HistoryEventSchema>;

export const AllocationsResponseSchema = object({ allocations: array(AllocationSchema) });
export const HistoryResponseSchema = object({ events: array(HistoryEventSchema) });
export const AddressResponseSchema = object({ ip: string(), holders: array(AllocationSchema), history: array(HistoryEventSchema) });

/** Releasing by hand is destructive: the caller must say so. */
export const ReleaseRequestSchema = object({ confirm: literal(true), cause: optional(pipe(string(), maxLength(256))) });
export const ReleaseResponseSchema = object({ released: array(AllocationSchema), unbound: number() });

export const AdminGcRequestSchema = object({ dryRun: optional(boolean()) });
export const SweepResultSchema = object({
  reclaimed: array(object({ ip: string(), network: string(), containerID: string(), ifname: string(), netns: string(), reason: string() })),
  pending: number(),
  dryRun: boolean(),
  blocksReleased: optional(array(string())),
});

export const ImportEntrySchema = object({ ip: text(64), containerID: text(256), ifname: text(15) });
export const ImportRequestSchema = object({
  network: attachment.network,
  /** The network's ranges (from its netconf), to record prefix, gateway and range set; optional. */
  ranges: optional(RangeSetsInputSchema),
  entries: pipe(array(ImportEntrySchema), maxLength(10_000)),
  /** host-local's last_reserved_ip.N: where allocation continues in range set N. */
  cursors: optional(array(object({ rangeSet: pipe(number(), integer(), minValue(0)), ip: text(64) }))),
});
export type ImportRequest = InferOutput<typeof ImportRequestSchema>;
export const ImportResponseSchema = object({
  imported: number(),
  unchanged: number(),
  conflicts: array(object({ ip: string(), containerID: string(), heldBy: string() })),
});
export type ImportResponse = InferOutput<typeof ImportResponseSchema>;
