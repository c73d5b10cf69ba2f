/**
 * A resource type is what the client needs to reach a kind: its group, version and plural
 * (the URL), whether it lives in a namespace, and the schema its objects are checked against.
 * The kinds ipamd uses are listed here; a manifest of any other kind gets a generic one
 * (manifests.ts finds its plural through discovery).
 */
import type { BaseIssue, BaseSchema, InferInput, InferOutput } from "valibot";
import { IPAddressClaimV1beta1Schema, IPAddressClaimV1beta2Schema, IPAddressV1beta1Schema, IPAddressV1beta2Schema } from "./schemas/capi.ts";
import { ConfigMapSchema, CustomResourceDefinitionSchema, LeaseSchema, NamespaceSchema } from "./schemas/core.ts";
import { AnyObjectSchema, type ObjectMeta } from "./schemas/meta.ts";
import { GlobalInClusterIPPoolSchema, InClusterIPPoolSchema, POOL_GROUP, POOL_VERSION } from "./schemas/pools.ts";
import { IPAMBlockSchema, IPAMNamespaceUsageSchema, IPAMNodeSubnetSchema, STORE_GROUP, STORE_VERSION } from "./schemas/store.ts";

/** Any schema whose output is an object with metadata: what every Kubernetes object has. */
export type ObjectSchema = BaseSchema<unknown, { metadata: ObjectMeta }, BaseIssue<unknown>>;

export interface ResourceType<S extends ObjectSchema = ObjectSchema> {
  /** "" for the core group (/api/v1). */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  schema: S;
}

export type ObjectOf<R extends ResourceType> = InferOutput<R["schema"]>;
/** An object as the API server takes it (what its schema reads; differs where a field is stored encoded). */
export type WireOf<R extends ResourceType> = InferInput<R["schema"]>;

export const apiVersionOf = (type: ResourceType): string => (type.group ? `${type.group}/${type.version}` : type.version);

/** The URL path of a collection (no name) or of one object, optionally of its subresource. */
export function resourcePath(type: ResourceType, at: { namespace?: string | null; name?: string; subresource?: string } = {}): string {
  if (type.namespaced && !at.namespace && at.name !== undefined) throw new Error(`${type.kind} ${at.name}: a namespaced kind needs a namespace`);
  const root = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const namespace = type.namespaced && at.namespace ? `/namespaces/${encodeURIComponent(at.namespace)}` : "";
  const name = at.name === undefined ? "" : `/${encodeURIComponent(at.name)}`;
  const subresource = at.subresource ? `/${at.subresource}` : "";
  return `${root}${namespace}/${type.plural}${name}${subresource}`;
}

const type = <S extends ObjectSchema>(group: string, version: string, plural: string, kind: string, namespaced: boolean, schema: S): ResourceType<S> =>
  ({ group, version, plural, kind, namespaced, schema });

export const Namespaces = type("", "v1", "namespaces", "Namespace", false, NamespaceSchema);
export const ConfigMaps = type("", "v1", "configmaps", "ConfigMap", true, ConfigMapSchema);
export const Leases = type("coordination.k8s.io", "v1", "leases", "Lease", true, LeaseSchema);
export const CustomResourceDefinitions = type("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, CustomResourceDefinitionSchema);
export const InClusterIPPools = type(POOL_GROUP, POOL_VERSION, "inclusterippools", "InClusterIPPool", true, InClusterIPPoolSchema);
export const GlobalInClusterIPPools = type(POOL_GROUP, POOL_VERSION, "globalinclusterippools", "GlobalInClusterIPPool", false, GlobalInClusterIPPoolSchema);
export const IPAddressClaimsV1beta2 = type("ipam.cluster.x-k8s.io", "v1beta2", "ipaddressclaims", "IPAddressClaim", true, IPAddressClaimV1beta2Schema);
export const IPAddressClaimsV1beta1 = type("ipam.cluster.x-k8s.io", "v1beta1", "ipaddressclaims", "IPAddressClaim", true, IPAddressClaimV1beta1Schema);
export const IPAddressesV1beta2 = type("ipam.cluster.x-k8s.io", "v1beta2", "ipaddresses", "IPAddress", true, IPAddressV1beta2Schema);
export const IPAddressesV1beta1 = type("ipam.cluster.x-k8s.io", "v1beta1", "ipaddresses", "IPAddress", true, IPAddressV1beta1Schema);
export const IPAMBlocks = type(STORE_GROUP, STORE_VERSION, "ipamblocks", "IPAMBlock", true, IPAMBlockSchema);
export const IPAMNamespaceUsages = type(STORE_GROUP, STORE_VERSION, "ipamnamespaceusages", "IPAMNamespaceUsage", true, IPAMNamespaceUsageSchema);
export const IPAMNodeSubnets = type(STORE_GROUP, STORE_VERSION, "ipamnodesubnets", "IPAMNodeSubnet", true, IPAMNodeSubnetSchema);

/** A kind known only by name (a manifest's): objects are checked for metadata and nothing else. */
export function genericResource(apiVersion: string, kind: string, plural: string, namespaced: boolean): ResourceType<typeof AnyObjectSchema> {
  const slash = apiVersion.indexOf("/");
  const [group, version] = slash < 0 ? ["", apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
  return type(group, version, plural, kind, namespaced, AnyObjectSchema);
}
