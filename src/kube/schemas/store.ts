/**
 * The Kubernetes-API store's kinds (group ipamd.io, v1alpha1, namespaced in the store's
 * namespace): IPAMBlock (a block's allocations, holds and bindings: the unit of compare-and-
 * swap), IPAMNamespaceUsage (what a namespace holds of a pool with maxPerNamespace) and
 * IPAMNodeSubnet (a node's subnet of a supernet pool). k8s/crds/ holds their CRDs;
 * test/kube/crds.test.ts keeps the two in step. Stored values leave out what their place says
 * (a block's space, an entry's address) and every empty field, so each watch event a write
 * sends to every daemon is as small as it can be.
 */
import { array, type InferInput, type InferOutput, integer, literal, looseObject, nullish, number, object, optional, picklist, pipe, record, string } from "valibot";
import { AllocationsSchema, allocationsText } from "./allocation-entry.ts";
import { ObjectMetaSchema } from "./meta.ts";

export { ALLOCATION_FIELDS, AllocationFieldsSchema, AllocationsSchema, allocationsText, type StoredAllocation } from "./allocation-entry.ts";

export const STORE_GROUP = "ipamd.io";
export const STORE_VERSION = "v1alpha1";
const API_VERSION = `${STORE_GROUP}/${STORE_VERSION}`;

const time = pipe(number(), integer());

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
  allocations: optional(AllocationsSchema),
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
  allocations: optional(AllocationsSchema),
  holds: optional(record(string(), StoredHoldSchema)),
  bindings: optional(record(string(), StoredBindingSchema)),
  pending: optional(record(string(), PendingChangeSchema)),
  commits: optional(record(string(), CommitMarkerSchema)),
});
export type BlockSpec = InferOutput<typeof BlockSpecSchema>;
/** A block's spec as the API server takes it: its allocations as their text. */
export type BlockSpecWire = InferInput<typeof BlockSpecSchema>;

/** The spec to write for a block as ipamd works with it. */
export function blockSpecWire(spec: BlockSpec): BlockSpecWire {
  const { allocations, pending, ...rest } = spec;
  const wire: BlockSpecWire = { ...rest };
  if (allocations) wire.allocations = allocationsText(allocations);
  if (pending) wire.pending = Object.fromEntries(Object.entries(pending).map(([txn, { allocations: puts, ...change }]) => [txn, puts ? { ...change, allocations: allocationsText(puts) } : change]));
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
