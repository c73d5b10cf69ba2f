/**
 * The Cluster API IPAM contract's names and shapes, as ipamd's controller speaks it (v1beta2):
 * finalizers, labels, annotations, the condition it sets, and how an IPAddress is written for a
 * claim — named as the claim, in its namespace, owned by the claim (its controller) and by the
 * pool, and kept by a finalizer until its claim is gone.
 */
import type { Answer } from "../engine/requests.ts";
import type { IPAddressClaimV1beta2, IPAddressV1beta2 } from "../kube/schemas/capi.ts";
import type { Condition, ObjectMeta, OwnerReference } from "../kube/schemas/meta.ts";
import { POOL_API_VERSION, POOL_GROUP } from "../kube/schemas/pools.ts";

export const RELEASE_ADDRESS_FINALIZER = "ipam.cluster.x-k8s.io/ReleaseAddress";
export const PROTECT_ADDRESS_FINALIZER = "ipam.cluster.x-k8s.io/ProtectAddress";
/** Kept on a pool while any of its addresses is in use (by a claim or a pod). */
export const PROTECT_POOL_FINALIZER = "ipam.cluster.x-k8s.io/ProtectPool";
export const CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name";
export const PAUSED_ANNOTATION = "cluster.x-k8s.io/paused";
/** Cluster API's label for sharing objects between several controllers (--watch-filter). */
export const WATCH_FILTER_LABEL = "cluster.x-k8s.io/watch-filter";
export const CAPI_IPAM_API_VERSION = "ipam.cluster.x-k8s.io/v1beta2";

/**
 * The engine's attachment of a claim: a network of its own — one per watch filter, so one
 * controller's clean-up never touches another's claims — and the claim's uid as the container.
 */
export const claimNetwork = (watchFilter?: string): string => (watchFilter ? `cluster-api.${watchFilter}` : "cluster-api");
export const CLAIM_IFNAME = "claim";

export const POOL_KINDS = ["InClusterIPPool", "GlobalInClusterIPPool"] as const;
export type PoolKind = (typeof POOL_KINDS)[number];

/** Whether a claim asks one of ipamd's pool kinds (other providers' claims are theirs). */
export const isOurs = (claim: IPAddressClaimV1beta2): boolean =>
  claim.spec.poolRef.apiGroup === POOL_GROUP && (POOL_KINDS as readonly string[]).includes(claim.spec.poolRef.kind);

export const isPaused = (meta: { annotations?: Record<string, string> | null }): boolean => meta.annotations?.[PAUSED_ANNOTATION] !== undefined;

/** The Ready condition, its transition time kept when its status does not change. */
export function readyCondition(previous: Condition[] | null | undefined, status: "True" | "False", reason: string, message: string, generation: number | null | undefined): Condition {
  const before = previous?.find((c) => c.type === "Ready");
  const lastTransitionTime = before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return { type: "Ready", status, reason, message, lastTransitionTime, ...(generation ? { observedGeneration: generation } : {}) };
}

export interface PoolOwner {
  kind: PoolKind;
  name: string;
  uid: string;
}

/** The IPAddress a claim gets for an answer of the engine. */
export function addressFor(claim: IPAddressClaimV1beta2, pool: PoolOwner, answer: Answer): { metadata: ObjectMeta; spec: IPAddressV1beta2["spec"] } {
  const owners: OwnerReference[] = [
    { apiVersion: CAPI_IPAM_API_VERSION, kind: "IPAddressClaim", name: claim.metadata.name!, uid: claim.metadata.uid!, controller: true, blockOwnerDeletion: true },
    { apiVersion: POOL_API_VERSION, kind: pool.kind, name: pool.name, uid: pool.uid, controller: false, blockOwnerDeletion: true },
  ];
  const cluster = claim.metadata.labels?.[CLUSTER_NAME_LABEL];
  const filter = claim.metadata.labels?.[WATCH_FILTER_LABEL];
  const labels = { ...(cluster ? { [CLUSTER_NAME_LABEL]: cluster } : {}), ...(filter ? { [WATCH_FILTER_LABEL]: filter } : {}) };
  return {
    metadata: {
      name: claim.metadata.name,
      namespace: claim.metadata.namespace,
      finalizers: [PROTECT_ADDRESS_FINALIZER],
      ownerReferences: owners,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    },
    spec: {
      claimRef: { name: claim.metadata.name! },
      poolRef: { apiGroup: POOL_GROUP, kind: pool.kind, name: pool.name },
      address: answer.address,
      prefix: answer.prefix,
      ...(answer.gateway ? { gateway: answer.gateway } : {}),
    },
  };
}
