/**
 * InClusterIPPool (namespaced) and GlobalInClusterIPPool (cluster-scoped): the Cluster API
 * in-cluster IPAM provider's pool kinds, group ipam.cluster.x-k8s.io, version v1alpha2 (the
 * provider's storage version since v0.1; v1alpha1 needs its conversion webhook, which ipamd
 * does not run, so it is not served). The provider's fields come first, with its rules; what
 * ipamd adds is optional, so a pool written for the provider is a valid ipamd pool and means
 * the same. k8s/crds/ holds the CRDs; test/kube/crds.test.ts keeps the two in step.
 */
import {
  array,
  boolean,
  type InferOutput,
  integer,
  literal,
  looseObject,
  maxLength,
  maxValue,
  minLength,
  minValue,
  nullish,
  number,
  picklist,
  pipe,
  regex,
  string,
} from "valibot";
import { NAME_PATTERN } from "../../protocol.ts";
import { LabelSelectorSchema, NamespaceNameSchema, ObjectMetaSchema } from "./meta.ts";

export const POOL_GROUP = "ipam.cluster.x-k8s.io";
export const POOL_VERSION = "v1alpha2";
export const POOL_API_VERSION = `${POOL_GROUP}/${POOL_VERSION}`;

const seconds = (max: number) => pipe(number(), integer(), minValue(0), maxValue(max));
const MONTH = 31 * 24 * 3600;
/** A node name, or a glob over names with `*` and `?` (e.g. `worker-*`). */
const NODE_PATTERN = /^[a-z0-9*?]([-a-z0-9.*?]*[a-z0-9*?])?$/;

export const PoolSpecSchema = looseObject({
  // The provider's (sigs.k8s.io/cluster-api-ipam-provider-in-cluster api/v1alpha2).
  addresses: array(string()),
  prefix: pipe(number(), integer(), minValue(0), maxValue(128)),
  gateway: nullish(string()),
  excludedAddresses: nullish(array(string())),
  allocateReservedIPAddresses: nullish(boolean()),
  /** The provider's own cooldown (from its v1.1); ipamd's word for it is releaseCooldown. */
  addressReuseGracePeriodSeconds: nullish(pipe(number(), integer(), minValue(0), maxValue(2 ** 31 - 1))),
  // ipamd's additions.
  /** Only pods in these namespaces are served from the pool. */
  namespaces: nullish(array(NamespaceNameSchema)),
  /** Namespaces chosen by label, resolved by watching Namespaces. */
  namespaceSelector: nullish(LabelSelectorSchema),
  /** Only on these nodes (names, or globs with `*` and `?`). */
  nodes: nullish(array(pipe(string(), minLength(1), maxLength(253), regex(NODE_PATTERN, "a node is a name or a glob with '*' and '?'")))),
  /** The address space the pool's addresses are unique in (default: one per family). */
  space: nullish(pipe(string(), minLength(1), maxLength(253), regex(NAME_PATTERN, "a space name is letters, digits, '_', '.' and '-'"))),
  /** At most this many addresses of the pool in use by one namespace. */
  maxPerNamespace: nullish(pipe(number(), integer(), minValue(1))),
  /** Seconds a released address rests before it is handed out again. */
  releaseCooldown: nullish(seconds(MONTH)),
  /** `pod`: an address stays bound to the pod's namespace/name across re-creation. */
  sticky: nullish(picklist(["pod"])),
  /** Seconds a released sticky binding is kept before the address returns to the pool. */
  stickyTTL: nullish(pipe(number(), integer(), minValue(1))),
});
export type PoolSpec = InferOutput<typeof PoolSpecSchema>;

const count = pipe(number(), integer(), minValue(0));
export const PoolStatusSchema = looseObject({
  ipAddresses: nullish(looseObject({ total: count, free: count, used: count, outOfRange: count })),
});
export type PoolStatus = InferOutput<typeof PoolStatusSchema>;

/** Both kinds have the same fields; only the kind (and the CRD's scope) differ. */
const poolSchema = <K extends string>(kind: K) =>
  looseObject({
    apiVersion: nullish(literal(POOL_API_VERSION)),
    kind: nullish(literal(kind)),
    metadata: ObjectMetaSchema,
    spec: PoolSpecSchema,
    status: nullish(PoolStatusSchema),
  });

export const InClusterIPPoolSchema = poolSchema("InClusterIPPool");
export type InClusterIPPool = InferOutput<typeof InClusterIPPoolSchema>;

export const GlobalInClusterIPPoolSchema = poolSchema("GlobalInClusterIPPool");
export type GlobalInClusterIPPool = InferOutput<typeof GlobalInClusterIPPoolSchema>;
