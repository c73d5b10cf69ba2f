/**
 * The admin API's schemas (pools, allocations, history, release, import): used by the daemon and
 * the admin CLI, never by the plugin, so a plugin exec does not build them (see DESIGN.md, hot path).
 */
import { array, boolean, integer, type InferOutput, literal, maxLength, maxValue, minLength, minValue, nullable, number, object, optional, picklist, pipe, string, unknown } from "valibot";
import { RangeSetsInputSchema } from "./ipam/pool.ts";
import { attachment, text } from "./protocol.ts";
import { AllocationRecordSchema, HistoryEventSchema as StoredHistoryEventSchema, HoldSchema } from "./store/records.ts";

/**
 * List pages: a default that answers most questions, and a maximum no client can exceed. A
 * page is serialised on the daemon's event loop, between pod starts: its size bounds how long
 * any admin read can hold one up (see daemon/read-gate.ts).
 */
export const ALLOCATION_PAGE = { default: 500, max: 1000 };
export const HISTORY_PAGE = { default: 100, max: 1000 };

export const Admin = {
  pools: "/v1/pools",
  reload: "/v1/reload",
} as const;

export const PoolReportSchema = object({
  name: string(),
  /** `named` (daemon config) or `node-subnet` (this node's part of a supernet pool). */
  kind: picklist(["named", "node-subnet"]),
  family: picklist([4, 6]),
  /** The pool as configured. */
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
  /** Addresses reserved by operators (ipamd reserve). */
  reserved: number(),
  orphans: object({ count: number(), sample: array(string()) }),
  /** The address space it is unique in (`default` unless configured). */
  space: string(),
  /** Whom it serves: absent, every namespace / every node. */
  namespaces: optional(array(string())),
  nodes: optional(array(string())),
  maxPerNamespace: optional(number()),
  /** The namespaces holding most of its addresses (at most NAMESPACE_USE_SHOWN), most first, and how many hold any. */
  namespaceUse: array(object({ namespace: string(), count: number() })),
  namespacesUsing: number(),
  /**
   * Allocations its rules no longer allow (after a reload): they stay until released, and are
   * told here — held by namespaces it no longer serves, by namespaces over its limit, and on
   * this node if it no longer serves this node.
   */
  outOfScope: object({
    namespaces: array(object({ namespace: string(), count: number() })),
    overLimit: array(object({ namespace: string(), count: number() })),
    thisNode: number(),
  }),
});
export type PoolReport = InferOutput<typeof PoolReportSchema>;

/** Namespaces a pool report names by use: enough to see who fills it, few enough to read. */
export const NAMESPACE_USE_SHOWN = 5;

/** A netconf's inline range set (no named pool): its network's own address space. */
export const RangeSetReportSchema = object({
  network: string(),
  /** The range set's canonical text. */
  rangeSet: string(),
  family: picklist([4, 6]),
  size: string(),
  used: number(),
  free: string(),
  utilization: number(),
});
export type RangeSetReport = InferOutput<typeof RangeSetReportSchema>;

/** Named pools, and the inline range sets this daemon has allocated from since it started. */
export const PoolsResponseSchema = object({ pools: array(PoolReportSchema), rangeSets: array(RangeSetReportSchema) });
export type PoolsResponse = InferOutput<typeof PoolsResponseSchema>;
export const ReloadResponseSchema = object({ pools: array(string()) });

export const AdminPaths = {
  allocations: "/v1/allocations",
  history: "/v1/history",
  gc: "/v1/gc",
  import: "/v1/import",
  reservations: "/v1/reservations",
  unreserve: "/v1/reservations/release",
  metrics: "/metrics",
} as const;

/** An allocation as the admin API answers it: the store's own record. */
export const AllocationSchema = AllocationRecordSchema;
export type Allocation = InferOutput<typeof AllocationSchema>;

export const HistoryEventSchema = StoredHistoryEventSchema;
export type HistoryEventBody = InferOutput<typeof HistoryEventSchema>;

/** next: the token of the following page (as `after`/`before`), absent on the last one. */
export const AllocationsResponseSchema = object({ allocations: array(AllocationSchema), next: optional(string()) });
export const HistoryResponseSchema = object({ events: array(HistoryEventSchema), next: optional(string()) });
export const AddressResponseSchema = object({ ip: string(), holders: array(AllocationSchema), holds: array(HoldSchema), history: array(HistoryEventSchema) });

/** ipamd reserve: a pool's address, or a span first-last, kept from pods until unreserved. */
export const ReserveRequestSchema = object({
  pool: text(253),
  first: text(64),
  last: optional(text(64)),
  note: optional(pipe(string(), maxLength(256))),
  /** Who asks (the CLI sends user@host): recorded with the reservation and in its history. */
  by: optional(pipe(string(), maxLength(256))),
});
export const ReserveResponseSchema = object({ reserved: array(string()) });
export const UnreserveRequestSchema = object({
  first: text(64),
  last: optional(text(64)),
  /** Where, when the same addresses are reserved in more than one space. */
  pool: optional(text(253)),
  space: optional(text(63)),
  by: optional(pipe(string(), maxLength(256))),
});
export const UnreserveResponseSchema = object({ unreserved: array(string()) });
export const ReservationsResponseSchema = object({ reservations: array(HoldSchema) });

/** Releasing by hand is destructive: the caller must say so. */
export const ReleaseRequestSchema = object({
  confirm: literal(true),
  cause: optional(pipe(string(), maxLength(256))),
  /** Which network's allocation, when the address is held in more than one. */
  network: optional(attachment.network),
  /** Which address space's, when pools of several spaces hold it. */
  space: optional(text(63)),
});
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
