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
      let { count, revision } = await client.countPrefix(prefix);
      // At the limit, the count is checked against what it counts before it refuses (below).
      if (count + l.adding > l.max && (await dropStrayKeys(client, layout, l, prefix)) > 0) ({ count, revision } = await client.countPrefix(prefix));
      if (count + l.adding > l.max) throw new LimitError(l.pool, l.namespace, l.max, count);
      return { key: prefix, rangeEnd: prefixEnd(prefix), target: "CREATE", result: "LESS", create_revision: revision + 1 } satisfies Compare;
    }),
  );
}

/** Keys read back per transaction while checking a count (below etcd's operations limit). */
const CHECK_BATCH = 100;

/**
 * nsp/ keys whose allocation is gone, deleted: a daemon of an older layout releases without
 * deleting them (during a rolling upgrade), and a migration racing a release can write one
 * back. Each would count against its namespace for ever. Checked only at the limit, where a
 * refusal is at stake: the keys read are at most the limit's worth. A key goes only if its
 * address key still does not hold an allocation of this pool and namespace when it is deleted.
 */
async function dropStrayKeys(client: EtcdClient, layout: Layout, l: NamespaceLimit, prefix: string): Promise<number> {
  const keys = (await client.rangePrefix(prefix, { keysOnly: true })).map((kv) => kv.key);
  let dropped = 0;
  for (let i = 0; i < keys.length; i += CHECK_BATCH) {
    const batch = keys.slice(i, i + CHECK_BATCH);
    const { ranges } = await client.txn([], batch.map((key) => ({ range: { key: layout.referenced(key) } })));
    for (const [j, key] of batch.entries()) {
      const kv = ranges[j]![0];
      const owner = kv ? (JSON.parse(kv.value) as { pool?: string | null; podNamespace?: string | null }) : null;
      if (owner?.pool === l.pool && owner.podNamespace === l.namespace) continue;
      const a = layout.referenced(key);
      // Deleted only if the address key is as just read (still gone, or still someone else's).
      const guard: Compare = kv ? { key: a, target: "MOD", result: "EQUAL", mod_revision: kv.modRevision } : { key: a, target: "CREATE", result: "EQUAL", create_revision: 0 };
      if ((await client.txn([guard], [{ delete: { key } }])).succeeded) dropped++;
    }
  }
  return dropped;
}
