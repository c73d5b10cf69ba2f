/**
 * The parts of Kubernetes' object metadata ipamd reads, as valibot schemas. Every object
 * schema is a looseObject: the server adds fields we do not model (managedFields, newer
 * API fields), and a read-modify-write (PUT) must send them back unchanged, so unknown
 * keys pass through instead of being stripped. Optional fields are `nullish`: the API
 * server omits empty fields, but some writers (and dry-run answers) spell them `null`.
 */
import { array, boolean, type InferOutput, integer, looseObject, maxLength, minLength, minValue, nullish, number, picklist, pipe, record, regex, string } from "valibot";

/** RFC 1123 subdomain: most object names (pools, claims, leases, CRDs). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 label: namespace names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const ObjectNameSchema = pipe(string(), minLength(1), maxLength(253), regex(DNS_SUBDOMAIN, "a name is lower-case letters, digits, '-' and '.'"));
export const NamespaceNameSchema = pipe(string(), minLength(1), maxLength(63), regex(DNS_LABEL, "a namespace is lower-case letters, digits and '-'"));

export const OwnerReferenceSchema = looseObject({
  apiVersion: string(),
  kind: string(),
  name: string(),
  uid: string(),
  controller: nullish(boolean()),
  blockOwnerDeletion: nullish(boolean()),
});
export type OwnerReference = InferOutput<typeof OwnerReferenceSchema>;

export const ObjectMetaSchema = looseObject({
  name: nullish(string()),
  generateName: nullish(string()),
  namespace: nullish(string()),
  uid: nullish(string()),
  resourceVersion: nullish(string()),
  generation: nullish(pipe(number(), integer())),
  creationTimestamp: nullish(string()),
  deletionTimestamp: nullish(string()),
  deletionGracePeriodSeconds: nullish(pipe(number(), integer())),
  labels: nullish(record(string(), string())),
  annotations: nullish(record(string(), string())),
  finalizers: nullish(array(string())),
  ownerReferences: nullish(array(OwnerReferenceSchema)),
});
export type ObjectMeta = InferOutput<typeof ObjectMetaSchema>;

/** What every object has: the shape used for manifests of any kind and for watch bookmarks. */
export const AnyObjectSchema = looseObject({
  apiVersion: nullish(string()),
  kind: nullish(string()),
  metadata: ObjectMetaSchema,
});
export type AnyObject = InferOutput<typeof AnyObjectSchema>;

export const ListMetaSchema = looseObject({
  resourceVersion: nullish(string()),
  continue: nullish(string()),
  remainingItemCount: nullish(pipe(number(), integer())),
});

/** metav1.Status: every error answer, and the object of a watch ERROR event. */
export const StatusSchema = looseObject({
  kind: nullish(string()),
  status: nullish(string()),
  message: nullish(string()),
  reason: nullish(string()),
  code: nullish(pipe(number(), integer())),
  details: nullish(
    looseObject({
      name: nullish(string()),
      group: nullish(string()),
      kind: nullish(string()),
      uid: nullish(string()),
      retryAfterSeconds: nullish(pipe(number(), integer(), minValue(0))),
      causes: nullish(array(looseObject({ reason: nullish(string()), message: nullish(string()), field: nullish(string()) }))),
    }),
  ),
});
export type Status = InferOutput<typeof StatusSchema>;

/** metav1.Condition (the shape Cluster API's v1beta2 and CRDs' status use). */
export const ConditionSchema = looseObject({
  type: string(),
  status: picklist(["True", "False", "Unknown"]),
  reason: nullish(string()),
  message: nullish(string()),
  lastTransitionTime: nullish(string()),
  observedGeneration: nullish(pipe(number(), integer())),
});
export type Condition = InferOutput<typeof ConditionSchema>;

/** metav1.LabelSelector. */
export const LabelSelectorSchema = looseObject({
  matchLabels: nullish(record(string(), string())),
  matchExpressions: nullish(
    array(looseObject({ key: string(), operator: picklist(["In", "NotIn", "Exists", "DoesNotExist"]), values: nullish(array(string())) })),
  ),
});
export type LabelSelector = InferOutput<typeof LabelSelectorSchema>;
