/**
 * The built-in kinds ipamd reads or writes: Namespace (namespace selectors), ConfigMap,
 * Lease (leader election) and CustomResourceDefinition (only far enough to see that a CRD
 * is Established). Spec and status fields are the API's names, subsets of them.
 */
import { array, type InferOutput, integer, literal, looseObject, minValue, nullish, number, pipe, record, string } from "valibot";
import { ConditionSchema, ObjectMetaSchema } from "./meta.ts";

export const NamespaceSchema = looseObject({
  apiVersion: nullish(literal("v1")),
  kind: nullish(literal("Namespace")),
  metadata: ObjectMetaSchema,
  status: nullish(looseObject({ phase: nullish(string()) })),
});
export type Namespace = InferOutput<typeof NamespaceSchema>;

export const ConfigMapSchema = looseObject({
  apiVersion: nullish(literal("v1")),
  kind: nullish(literal("ConfigMap")),
  metadata: ObjectMetaSchema,
  data: nullish(record(string(), string())),
});
export type ConfigMap = InferOutput<typeof ConfigMapSchema>;

/**
 * coordination.k8s.io/v1 Lease. Times are metav1.MicroTime: RFC 3339 with exactly six
 * fractional digits (see formatMicroTime), which the server insists on when it parses them.
 */
export const LeaseSpecSchema = looseObject({
  holderIdentity: nullish(string()),
  leaseDurationSeconds: nullish(pipe(number(), integer(), minValue(0))),
  acquireTime: nullish(string()),
  renewTime: nullish(string()),
  leaseTransitions: nullish(pipe(number(), integer(), minValue(0))),
});
export const LeaseSchema = looseObject({
  apiVersion: nullish(literal("coordination.k8s.io/v1")),
  kind: nullish(literal("Lease")),
  metadata: ObjectMetaSchema,
  spec: nullish(LeaseSpecSchema),
});
export type Lease = InferOutput<typeof LeaseSchema>;

/** metav1.MicroTime's wire form: 2026-05-04T12:00:00.123000Z. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** apiextensions.k8s.io/v1 CustomResourceDefinition: what is needed to apply one and wait for it. */
export const CustomResourceDefinitionSchema = looseObject({
  apiVersion: nullish(literal("apiextensions.k8s.io/v1")),
  kind: nullish(literal("CustomResourceDefinition")),
  metadata: ObjectMetaSchema,
  spec: looseObject({
    group: string(),
    scope: string(),
    names: looseObject({ plural: string(), kind: string() }),
    versions: array(looseObject({ name: string() })),
  }),
  status: nullish(looseObject({ conditions: nullish(array(ConditionSchema)), storedVersions: nullish(array(string())) })),
});
export type CustomResourceDefinition = InferOutput<typeof CustomResourceDefinitionSchema>;
