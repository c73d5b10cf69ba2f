/**
 * Every request the Kubernetes-API store makes, as RBAC rules: the store checks each request
 * against this list before sending it (a request not listed is a bug, refused before the API
 * server sees it), and the manifests' Role (k8s/examples/one-cidr-across-nodes-kubernetes.yaml)
 * must grant exactly this (test/k8s/manifests.test.ts), all in the store's namespace.
 */
export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const STORE_RULES: Rule[] = [
  // Blocks: watched into the cache, read again after a lost race, created and replaced under compare-and-swap.
  { apiGroups: ["ipamd.io"], resources: ["ipamblocks"], verbs: ["get", "list", "watch", "create", "update"] },
  // A namespace's use of a limited pool: read, created, replaced; listed at start (what a dead process left).
  { apiGroups: ["ipamd.io"], resources: ["ipamnamespaceusages"], verbs: ["get", "list", "create", "update"] },
  // Node subnet claims: listed, created (the claim), deleted (a node moving to another subnet).
  { apiGroups: ["ipamd.io"], resources: ["ipamnodesubnets"], verbs: ["list", "create", "delete"] },
  // The node's Lease: renewed (read again after a conflict), and every node's listed for liveness.
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "list", "create", "update"] },
];

/** Whether the store may make a request (see STORE_RULES). */
export function allowed(group: string, resource: string, verb: string): boolean {
  return STORE_RULES.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}
