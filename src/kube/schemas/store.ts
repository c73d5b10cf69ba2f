/**
 * The Kubernetes-API store's kinds (group ipamd.io, v1alpha1, namespaced in the store's
 * namespace): IPAMBlock (a block's allocations, holds and bindings: the unit of compare-and-
 * swap), IPAMNamespaceUsage (what a namespace holds of a pool with maxPerNamespace) and
 * IPAMNodeSubnet (a node's subnet of a supernet pool). k8s/crds/ holds their CRDs;
 * test/kube/crds.test.ts keeps the two in step. Stored values leave out what their place says
 * (a block's space, an entry's address) and every empty field, so each watch event a write
 * sends to every daemon is as small as it can be.
 */
import {
  array, boolean, cache, type InferInput, type InferOutput, integer, length, literal, looseObject, maxValue, minValue, nullish, number, object, optional, parseJson, picklist,
  pipe, record, string, transform, unknown,
} from "valibot";
import { ObjectMetaSchema } from "./meta.ts";

export const STORE_GROUP = "ipamd.io";
export const STORE_VERSION = "v1alpha1";
const API_VERSION = `${STORE_GROUP}/${STORE_VERSION}`;

const time = pipe(number(), integer());

/** An allocation record without space, ip and family (the block and the key say them); absent fields are left out. */
export const AllocationFieldsSchema = object({
  network: string(),
  containerID: string(),
  ifname: string(),
  netns: optional(string()),
  podNamespace: optional(string()),
  podName: optional(string()),
  podUid: optional(string()),
  node: string(),
  createdAt: time,
  static: optional(boolean()),
  prefix: pipe(number(), integer(), minValue(0), maxValue(128)),
  gateway: optional(string()),
  pool: optional(string()),
  rangeSet: optional(string()),
});
export type StoredAllocation = InferOutput<typeof AllocationFieldsSchema>;

/**
 * An allocation as a block stores it: one string, the JSON array of its fields in this order,
 * null (static: false) for an absent one. The API server decodes, prunes, validates and
 * re-encodes every field of an object on each write, and a block is written whole on each
 * ADD: one string per allocation instead of its fourteen fields made one write of a block
 * holding 64 allocations 11.4 → 3.5 ms here (32: 6.5 → 2.8). ipamd checks every field when
 * it reads the entry.
 */
export const ALLOCATION_FIELDS = [
  "containerID", "ifname", "network", "node", "createdAt", "prefix", "gateway", "pool", "rangeSet", "netns", "podNamespace", "podName", "podUid", "static",
] as const satisfies readonly (keyof StoredAllocation)[];

/**
 * Entries read lately, by their string (valibot's LRU cache): a block is sent whole on each
 * write, to its writer and to every daemon's watch, and all but one or two of its entries are
 * the strings read the time before. Entries are never changed in place, so sharing is safe;
 * 8,192 covers 128 full blocks in use at once, a few MB.
 */
export const StoredAllocationSchema = cache(
  pipe(
    string(),
    parseJson(),
    array(unknown()),
    length(ALLOCATION_FIELDS.length),
    transform((values) => {
      const fields: Record<string, unknown> = {};
      ALLOCATION_FIELDS.forEach((name, i) => {
        if (values[i] !== null && values[i] !== false) fields[name] = values[i];
      });
      return fields;
    }),
    AllocationFieldsSchema,
  ),
  { maxSize: 8192 },
);

/** The stored string of an allocation; StoredAllocationSchema reads it back equal. */
export function allocationEntry(a: StoredAllocation): string {
  return JSON.stringify(ALLOCATION_FIELDS.map((name) => a[name] ?? (name === "static" ? false : null)));
}

export const StoredHoldSchema = object({
  kind: picklist(["cooling", "sticky", "reserved"]),
  until: optional(time),
  pod: optional(string()),
  pool: optional(string()),
  note: optional(string()),
  by: optional(string()),
});
export type StoredHold = InferOutput<typeof StoredHoldSchema>;

export const StoredBindingSchema = object({ ip: string(), releasedAt: optional(time) });
export type StoredBinding = InferOutput<typeof StoredBindingSchema>;

/** What a pending change or a commit marker says of its commit: who made it, when. */
const txnFields = { node: string(), at: time };

/** One commit's changes to a block that is not its primary, not yet known to have happened. */
export const PendingChangeSchema = object({
  primary: string(),
  ...txnFields,
  allocations: optional(record(string(), StoredAllocationSchema)),
  holds: optional(record(string(), StoredHoldSchema)),
  bindings: optional(record(string(), StoredBindingSchema)),
  removeAllocations: optional(array(string())),
  removeHolds: optional(array(string())),
  removeBindings: optional(array(string())),
});
export type PendingChange = InferOutput<typeof PendingChangeSchema>;

/** A commit that happened, kept on its primary until none of its other blocks holds it as pending. */
export const CommitMarkerSchema = object({ ...txnFields, secondaries: array(string()) });
export type CommitMarker = InferOutput<typeof CommitMarkerSchema>;

export const BlockSpecSchema = object({
  space: string(),
  cidr: string(),
  node: string(),
  allocations: optional(record(string(), StoredAllocationSchema)),
  holds: optional(record(string(), StoredHoldSchema)),
  bindings: optional(record(string(), StoredBindingSchema)),
  pending: optional(record(string(), PendingChangeSchema)),
  commits: optional(record(string(), CommitMarkerSchema)),
});
export type BlockSpec = InferOutput<typeof BlockSpecSchema>;
/** A block's spec as the API server takes it: its allocations as their stored strings. */
export type BlockSpecWire = InferInput<typeof BlockSpecSchema>;

const entriesOf = (allocations: Record<string, StoredAllocation> | undefined): Record<string, string> | undefined => {
  if (!allocations) return undefined;
  const out: Record<string, string> = {};
  for (const ip in allocations) out[ip] = allocationEntry(allocations[ip]!);
  return out;
};

/** The spec to write for a block as ipamd works with it. */
export function blockSpecWire(spec: BlockSpec): BlockSpecWire {
  const { allocations, pending, ...rest } = spec;
  const wire: BlockSpecWire = { ...rest };
  if (allocations) wire.allocations = entriesOf(allocations);
  if (pending) wire.pending = Object.fromEntries(Object.entries(pending).map(([txn, { allocations: puts, ...change }]) => [txn, puts ? { ...change, allocations: entriesOf(puts) } : change]));
  return wire;
}

export const IPAMBlockSchema = looseObject({
  apiVersion: nullish(literal(API_VERSION)),
  kind: nullish(literal("IPAMBlock")),
  metadata: ObjectMetaSchema,
  spec: BlockSpecSchema,
});
export type IPAMBlock = InferOutput<typeof IPAMBlockSchema>;

/** An allocation counted against a namespace's limit. */
export const UsageRefSchema = object({ containerID: string(), createdAt: time });
export type UsageRef = InferOutput<typeof UsageRefSchema>;

export const UsageSpecSchema = object({
  pool: string(),
  namespace: string(),
  addresses: optional(record(string(), UsageRefSchema)),
  pending: optional(record(string(), object({ primary: string(), ...txnFields, addresses: optional(record(string(), UsageRefSchema)) }))),
});
export type UsageSpec = InferOutput<typeof UsageSpecSchema>;

export const IPAMNamespaceUsageSchema = looseObject({
  apiVersion: nullish(literal(API_VERSION)),
  kind: nullish(literal("IPAMNamespaceUsage")),
  metadata: ObjectMetaSchema,
  spec: UsageSpecSchema,
});
export type IPAMNamespaceUsage = InferOutput<typeof IPAMNamespaceUsageSchema>;

export const NodeSubnetSpecSchema = object({ pool: string(), subnet: string(), node: string() });

export const IPAMNodeSubnetSchema = looseObject({
  apiVersion: nullish(literal(API_VERSION)),
  kind: nullish(literal("IPAMNodeSubnet")),
  metadata: ObjectMetaSchema,
  spec: NodeSubnetSpecSchema,
});
export type IPAMNodeSubnet = InferOutput<typeof IPAMNodeSubnetSchema>;
