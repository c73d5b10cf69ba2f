/**
 * maxPerNamespace on etcd: a namespace's allocations from a pool are its keys under
 * nsp/POOL/NAMESPACE/ (layout.ts), counted before the commit. The commit then carries a
 * compare over that whole range — no key in it created since the count — so an allocation
 * another daemon made in between fails the transaction, and the count is taken again. Exact
 * without a counter key every ADD of the namespace would fight over.
 */
import { type Compare, type EtcdClient, prefixEnd } from "../etcd-client.ts";
import { type Change, LimitError } from "../store.ts";
import type { Layout } from "./layout.ts";

export interface NamespaceLimit {
  pool: string;
  namespace: string;
  max: number;
  /** Allocations of the commit that add to the count. */
  adding: number;
}

/**
 * The limits a commit's changes ask for, each with how many of its allocations it counts.
 * Releases in the same commit are not subtracted: one found released already would be
 * subtracted twice, and refusing at the very edge is the safe way to be wrong.
 */
export function limitsOf(changes: Change[]): NamespaceLimit[] {
  const limits = new Map<string, NamespaceLimit>();
  for (const c of changes) if (c.op === "limit") limits.set(`${c.pool}\0${c.namespace}`, { pool: c.pool, namespace: c.namespace, max: Math.min(c.max, limits.get(`${c.pool}\0${c.namespace}`)?.max ?? c.max), adding: 0 });
  for (const c of changes) {
    if (c.op !== "allocate" || c.record.pool === null || !c.record.podNamespace) continue;
    const limit = limits.get(`${c.record.pool}\0${c.record.podNamespace}`);
    if (limit) limit.adding++;
  }
  return [...limits.values()];
}

/** Counts each limit's range now: LimitError if the commit would pass one, else its compares. */
export async function limitCompares(client: EtcdClient, layout: Layout, limits: NamespaceLimit[]): Promise<Compare[]> {
  return Promise.all(
    limits.map(async (l) => {
      const prefix = layout.namespaceUse(l.pool, l.namespace);
      const { count, revision } = await client.countPrefix(prefix);
      if (count + l.adding > l.max) throw new LimitError(l.pool, l.namespace, l.max, count);
      return { key: prefix, rangeEnd: prefixEnd(prefix), target: "CREATE", result: "LESS", create_revision: revision + 1 } satisfies Compare;
    }),
  );
}
