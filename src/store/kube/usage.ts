/**
 * maxPerNamespace on the Kubernetes-API store. The allocations a namespace holds of a pool with
 * a limit are listed in one IPAMNamespaceUsage object; an ADD that counts adds its allocation
 * there (as a pending change of its commit, see working-block.ts) after checking the count,
 * under a compare-and-swap, so two daemons cannot both take the namespace's last address.
 * Releases do not write it (a DEL stays one write): an entry whose allocation is gone is
 * dropped by the next ADD that counts, once a fresh read of its block confirms it is gone.
 */
import type { UsageRef, UsageSpec } from "../../kube/schemas/store.ts";
import type { Change } from "../store.ts";
import { LimitError } from "../store.ts";
import { limitsOf } from "../etcd/limits.ts";
import type { Resolution } from "./working-block.ts";

/** What one caller adds to one usage object. */
export interface UsageAdd {
  pool: string;
  namespace: string;
  max: number;
  refs: [key: string, ref: UsageRef][];
}

/** An allocation's key in a usage object: its space and address. */
export const usageKey = (space: string, ip: string): string => `${space}|${ip}`;
export const usageAddress = (key: string): { space: string; ip: string } => ({ space: key.slice(0, key.lastIndexOf("|")), ip: key.slice(key.lastIndexOf("|") + 1) });

/** The usage objects a caller's changes count against, each with the allocations it adds. */
export function usageAdds(changes: Change[]): UsageAdd[] {
  return limitsOf(changes).flatMap((limit) => {
    const refs = changes.flatMap((c): [string, UsageRef][] =>
      c.op === "allocate" && c.record.pool === limit.pool && c.record.podNamespace === limit.namespace
        ? [[usageKey(c.record.space, c.record.ip), { containerID: c.record.containerID, createdAt: c.record.createdAt }]]
        : [],
    );
    return refs.length > 0 ? [{ pool: limit.pool, namespace: limit.namespace, max: limit.max, refs }] : [];
  });
}

type PendingUsage = NonNullable<UsageSpec["pending"]>[string];

export class WorkingUsage {
  readonly addresses: Map<string, UsageRef>;
  readonly pending = new Map<string, PendingUsage>();
  changed = false;

  constructor(
    readonly pool: string,
    readonly namespace: string,
    spec: UsageSpec | undefined,
    resolve: (txn: string, primary: string) => Resolution,
  ) {
    this.addresses = new Map(Object.entries(spec?.addresses ?? {}));
    for (const [txn, change] of Object.entries(spec?.pending ?? {})) {
      const state = resolve(txn, change.primary);
      if (state === "unknown") this.pending.set(txn, change);
      else {
        this.changed = true;
        if (state === "committed") for (const [key, ref] of Object.entries(change.addresses ?? {})) this.addresses.set(key, ref);
      }
    }
  }

  /** Entries whose allocation is gone: dropped. */
  prune(gone: Iterable<string>): void {
    for (const key of gone) if (this.addresses.delete(key)) this.changed = true;
  }

  /** Allocations counted now: the entries, and those of commits not known to be over (counted, to be safe). */
  get count(): number {
    let n = this.addresses.size;
    for (const change of this.pending.values()) n += Object.keys(change.addresses ?? {}).length;
    return n;
  }

  /** Adds a caller's allocations as its commit's pending change, or refuses them with the count. */
  add(add: UsageAdd, txn: { id: string; primary: string; node: string; at: number }): LimitError | null {
    // An entry at an address this caller allocates is gone by definition (the address was free).
    const stale = add.refs.filter(([key]) => this.addresses.has(key)).length;
    const count = this.count - stale;
    if (count + add.refs.length > add.max) return new LimitError(add.pool, add.namespace, add.max, count);
    for (const [key] of add.refs) this.addresses.delete(key);
    const change = this.pending.get(txn.id) ?? { primary: txn.primary, node: txn.node, at: txn.at };
    change.addresses = { ...(change.addresses ?? {}), ...Object.fromEntries(add.refs) };
    this.pending.set(txn.id, change);
    this.changed = true;
    return null;
  }

  toSpec(): UsageSpec {
    const spec: UsageSpec = { pool: this.pool, namespace: this.namespace };
    if (this.addresses.size) spec.addresses = Object.fromEntries(this.addresses);
    if (this.pending.size) spec.pending = Object.fromEntries(this.pending);
    return spec;
  }
}
