/**
 * Who a named pool serves: pods of some namespaces (or every namespace), on some nodes (names
 * or globs such as `edge-*`), in one address space. Pools of different spaces may overlap
 * (Infoblox's network views, a VRF); within a space an address is unique. Pure: no I/O.
 */
import { array, type InferOutput, integer, maxLength, minLength, minValue, number, optional, pipe, regex, string } from "valibot";

/** A Kubernetes namespace name (RFC 1123 label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A node name or a glob of one: DNS subdomain characters, with `*` and `?`. */
const NODE_GLOB = /^[a-zA-Z0-9*?]([-a-zA-Z0-9.*?]*[a-zA-Z0-9*?])?$/;
/** A space's name, as it appears in store keys. */
export const SPACE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const DEFAULT_SPACE = "default";

/** The scope fields of a pool definition (see NamedPoolSchema). */
export const ScopeEntries = {
  /** Serves only pods of these namespaces; absent, every namespace (cluster-wide). */
  namespaces: optional(pipe(array(pipe(string(), maxLength(63), regex(NAMESPACE, "a namespace is lowercase letters, digits and '-'"))), minLength(1), maxLength(1024))),
  /** Serves only on nodes matching one of these names or globs (`*`, `?`). */
  nodes: optional(pipe(array(pipe(string(), maxLength(253), regex(NODE_GLOB, "a node is a name or a glob of one (letters, digits, '-', '.', '*', '?')"))), minLength(1), maxLength(1024))),
  /** The address space (network view, VRF) the pool's addresses are unique in. */
  space: optional(pipe(string(), minLength(1), maxLength(63), regex(SPACE_NAME, "a space is letters, digits, '_', '.' and '-'"))),
  /** The most of this pool's addresses one namespace may hold at once. */
  maxPerNamespace: optional(pipe(number(), integer(), minValue(1))),
};

export interface PoolScope {
  /** null: every namespace. */
  namespaces: ReadonlySet<string> | null;
  /** null: every node. */
  nodes: RegExp[] | null;
  space: string;
  maxPerNamespace: number | null;
}

type ScopeInput = { [K in keyof typeof ScopeEntries]?: InferOutput<(typeof ScopeEntries)[K]> };

/** A glob as an anchored expression: `*` any run of characters, `?` one; nothing else special. */
export function globPattern(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export function compileScope(input: ScopeInput): PoolScope {
  return {
    namespaces: input.namespaces ? new Set(input.namespaces) : null,
    nodes: input.nodes ? input.nodes.map(globPattern) : null,
    space: input.space ?? DEFAULT_SPACE,
    maxPerNamespace: input.maxPerNamespace ?? null,
  };
}

export const servesNode = (scope: PoolScope, node: string): boolean => scope.nodes === null || scope.nodes.some((p) => p.test(node));

/** Whether a pod of `namespace` (undefined: the runtime named none) may take from the pool. */
export const servesNamespace = (scope: PoolScope, namespace: string | undefined): boolean =>
  scope.namespaces === null || (namespace !== undefined && scope.namespaces.has(namespace));
