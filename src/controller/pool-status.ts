/**
 * Pool objects kept up to date by the controller: status.ipAddresses (total, used, free, and
 * outOfRange — IPAddresses of the pool outside its ranges), and the ProtectPool finalizer, so
 * a pool whose addresses are still in use — by claims or by pods, cooling ones included — is
 * not deleted out from under them. Counts come from the store (the space is read again first:
 * pods on other nodes allocate there too). Writes are coalesced per pool.
 */
import type { ConsolaInstance } from "consola/core";
import type { Engine } from "../engine/engine.ts";
import { spaceOf } from "../engine/pools.ts";
import { parseIp } from "../ipam/address.ts";
import type { KubeClient } from "../kube/client.ts";
import { modify } from "../kube/conflict.ts";
import { NotFoundError } from "../kube/errors.ts";
import type { Informer } from "../kube/informer.ts";
import { GlobalInClusterIPPools, InClusterIPPools, type IPAddressesV1beta2 } from "../kube/resources.ts";
import { type PoolObject, poolNameOf, poolOfObject } from "../pool-source/pool-objects.ts";
import type { PoolSource } from "../pool-source/pool-source.ts";
import { PROTECT_POOL_FINALIZER } from "./contract.ts";

export interface PoolStatusDeps {
  client: KubeClient;
  engine: Engine;
  source: PoolSource;
  addresses: Informer<typeof IPAddressesV1beta2>;
  log: ConsolaInstance;
}

type Counts = { total: number; used: number; free: number; outOfRange: number };

export class PoolStatusWriter {
  readonly #due = new Map<string, ReturnType<typeof setTimeout>>();
  #chain: Promise<void> = Promise.resolve();

  constructor(private readonly deps: PoolStatusDeps) {}

  /** The pool's counts or finalizer may have changed: written within a moment, once per burst. */
  touch(pool: string): void {
    if (this.#due.has(pool)) return;
    this.#due.set(
      pool,
      setTimeout(() => {
        this.#due.delete(pool);
        // One at a time: each re-reads a space from the store.
        this.#chain = this.#chain.then(() => this.update(pool)).catch((error) => this.deps.log.warn("pool status", { pool, error: (error as Error).message }));
      }, 200),
    );
  }

  touchAll(): void {
    for (const o of this.deps.source.all()) this.touch(poolNameOf(o.kind, o.object.metadata.namespace, o.object.metadata.name!));
  }

  stop(): void {
    for (const timer of this.#due.values()) clearTimeout(timer);
    this.#due.clear();
  }

  async update(pool: string): Promise<void> {
    const o = this.deps.source.find(pool);
    if (!o) return;
    const made = poolOfObject(o);
    const deleting = !!o.object.metadata.deletionTimestamp;
    // An object that makes no pool (invalid, or refused beside another) serves nothing: no
    // status of its own, and nothing keeps it from deletion.
    // (The controller's pools are all objects: a name it has installed is this object's.)
    const installed = this.deps.engine.registry.named.has(pool);
    if ("error" in made || !made.pool.rangeSet || (!installed && !deleting)) {
      if (deleting) await this.finalizer(o, false);
      return;
    }
    const { engine } = this.deps;
    await engine.resync(spaceOf(made.pool));
    const set = made.pool.rangeSet;
    const taken = engine.takenSet(spaceOf(made.pool), made.pool.family);
    const used = set.ranges.reduce((n, r) => n + taken.countIn(r.start, r.end), 0);
    const inRange = (ip: string) => {
      const v = parseIp(ip)?.value;
      return v !== undefined && set.ranges.some((r) => v >= r.start && v <= r.end);
    };
    const addresses = this.deps.addresses.list().filter((a) => a.spec.poolRef.kind === o.kind && a.spec.poolRef.name === o.object.metadata.name && (o.kind === "GlobalInClusterIPPool" || a.metadata.namespace === o.object.metadata.namespace));
    const total = Number(set.size > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : set.size);
    const counts: Counts = { total, used, free: Math.max(0, total - used), outOfRange: addresses.filter((a) => !inRange(a.spec.address)).length };
    await this.finalizer(o, used > 0 || addresses.length > 0);
    if (!o.object.metadata.deletionTimestamp) await this.writeStatus(o, counts);
  }

  /** Kept while in use; taken off a pool being deleted once nothing uses it. */
  private async finalizer(o: PoolObject, inUse: boolean): Promise<void> {
    const has = o.object.metadata.finalizers?.includes(PROTECT_POOL_FINALIZER) ?? false;
    const deleting = !!o.object.metadata.deletionTimestamp;
    const want = !deleting || inUse;
    if (has === want) return;
    await this.#modify(o, (meta) => {
      const rest = (meta.finalizers ?? []).filter((f) => f !== PROTECT_POOL_FINALIZER);
      meta.finalizers = want ? [...rest, PROTECT_POOL_FINALIZER] : rest;
    });
    this.deps.log.info(want ? "pool protected while in use" : "pool no longer in use: deletion may proceed", { pool: o.object.metadata.name });
  }

  private async writeStatus(o: PoolObject, counts: Counts): Promise<void> {
    const before = o.object.status?.ipAddresses;
    if (before && before.total === counts.total && before.used === counts.used && before.free === counts.free && before.outOfRange === counts.outOfRange) return;
    await this.#modify(o, undefined, (status) => {
      status.ipAddresses = counts;
    });
  }

  async #modify(o: PoolObject, meta?: (m: PoolObject["object"]["metadata"]) => void, status?: (s: Record<string, unknown>) => void): Promise<void> {
    const type = o.kind === "InClusterIPPool" ? InClusterIPPools : GlobalInClusterIPPools;
    const namespace = o.object.metadata.namespace ?? undefined;
    await modify(
      this.deps.client,
      type,
      o.object.metadata.name!,
      (fresh) => {
        meta?.(fresh.metadata);
        if (status) {
          fresh.status ??= {};
          status(fresh.status as Record<string, unknown>);
        }
      },
      { namespace, status: status !== undefined },
    ).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }
}
