/**
 * Cluster API's IPAddressClaim and IPAddress (group ipam.cluster.x-k8s.io, installed by
 * Cluster API itself, not by ipamd). Cluster API serves v1beta2 (storage since v1.11) and
 * v1beta1 (deprecated) side by side and converts between them with its webhook. The
 * in-cluster provider's last release (v1.0.x) speaks v1beta1; its next (v1.1) speaks
 * v1beta2. Both are here, so the controller can speak the version a cluster's Cluster API
 * serves. Differences that matter: v1beta2 requires poolRef.apiGroup and claimRef.name and
 * uses metav1.Condition; v1beta1 conditions carry a severity and may omit reason/message.
 */
import { array, type InferOutput, integer, literal, looseObject, maxValue, minValue, nullish, number, pipe, string } from "valibot";
import { ConditionSchema, ObjectMetaSchema } from "./meta.ts";

export const CAPI_IPAM_GROUP = "ipam.cluster.x-k8s.io";

/** Cluster API's own condition type (v1beta1): metav1.Condition's fields plus severity, reason optional. */
export const V1beta1ConditionSchema = looseObject({
  type: string(),
  status: string(),
  severity: nullish(string()),
  lastTransitionTime: nullish(string()),
  reason: nullish(string()),
  message: nullish(string()),
});

const PoolRefV1beta2 = looseObject({ apiGroup: string(), kind: string(), name: string() });
const PoolRefV1beta1 = looseObject({ apiGroup: nullish(string()), kind: string(), name: string() });
const prefix = pipe(number(), integer(), minValue(0), maxValue(128));

export const IPAddressClaimV1beta2Schema = looseObject({
  apiVersion: nullish(literal(`${CAPI_IPAM_GROUP}/v1beta2`)),
  kind: nullish(literal("IPAddressClaim")),
  metadata: ObjectMetaSchema,
  spec: looseObject({ clusterName: nullish(string()), poolRef: PoolRefV1beta2 }),
  status: nullish(
    looseObject({
      conditions: nullish(array(ConditionSchema)),
      addressRef: nullish(looseObject({ name: string() })),
      deprecated: nullish(looseObject({ v1beta1: nullish(looseObject({ conditions: nullish(array(V1beta1ConditionSchema)) })) })),
    }),
  ),
});
export type IPAddressClaimV1beta2 = InferOutput<typeof IPAddressClaimV1beta2Schema>;

export const IPAddressClaimV1beta1Schema = looseObject({
  apiVersion: nullish(literal(`${CAPI_IPAM_GROUP}/v1beta1`)),
  kind: nullish(literal("IPAddressClaim")),
  metadata: ObjectMetaSchema,
  spec: looseObject({ clusterName: nullish(string()), poolRef: PoolRefV1beta1 }),
  status: nullish(
    looseObject({
      addressRef: nullish(looseObject({ name: nullish(string()) })),
      conditions: nullish(array(V1beta1ConditionSchema)),
      v1beta2: nullish(looseObject({ conditions: nullish(array(ConditionSchema)) })),
    }),
  ),
});
export type IPAddressClaimV1beta1 = InferOutput<typeof IPAddressClaimV1beta1Schema>;

export const IPAddressV1beta2Schema = looseObject({
  apiVersion: nullish(literal(`${CAPI_IPAM_GROUP}/v1beta2`)),
  kind: nullish(literal("IPAddress")),
  metadata: ObjectMetaSchema,
  spec: looseObject({ claimRef: looseObject({ name: string() }), poolRef: PoolRefV1beta2, address: string(), prefix, gateway: nullish(string()) }),
});
export type IPAddressV1beta2 = InferOutput<typeof IPAddressV1beta2Schema>;

export const IPAddressV1beta1Schema = looseObject({
  apiVersion: nullish(literal(`${CAPI_IPAM_GROUP}/v1beta1`)),
  kind: nullish(literal("IPAddress")),
  metadata: ObjectMetaSchema,
  spec: looseObject({ claimRef: looseObject({ name: nullish(string()) }), poolRef: PoolRefV1beta1, address: string(), prefix, gateway: nullish(string()) }),
});
export type IPAddressV1beta1 = InferOutput<typeof IPAddressV1beta1Schema>;
