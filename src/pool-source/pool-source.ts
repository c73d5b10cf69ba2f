/**
 * Pools from the Kubernetes API (`serve --pools-from kubernetes`, and the controller): the two
 * pool kinds are watched, and Namespaces too once a pool selects namespaces by label — never
 * otherwise, so a daemon whose pools need no selector needs no permission on Namespaces. Each
 * change yields a whole new PoolSetup (the config file's pools and defaults, then the
 * objects' pools, oldest first), which the engine installs with the reload rules. An object
 * that makes no pool, or one that overlaps an earlier pool of its space, is left out and told.
 */
import type { NamedPool } from "../ipam/named-pool.ts";
import { overlapWith } from "../ipam/named-pool.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer } from "../kube/informer.ts";
import { GlobalInClusterIPPools, InClusterIPPools, Namespaces } from "../kube/resources.ts";
import type { Namespace } from "../kube/schemas/core.ts";
import { type ObjectPool, type PoolObject, poolNameOf, poolOfObject, withSelected } from "./pool-objects.ts";
import { matchesSelector } from "./selector.ts";

export interface PoolSourceOptions {
  client: KubeClient;
  /** The config file's pools and defaults, which come first and win a name. */
  base: PoolSetup;
  /** A new setup, whenever the objects (or the namespaces a selector matches) change. */
  onChange: (setup: PoolSetup, problems: string[]) => void | Promise<void>;
  onError?: (error: unknown) => void;
}

const created = (o: PoolObject) => `${o.object.metadata.creationTimestamp ?? ""}\0${o.kind}\0${o.object.metadata.namespace ?? ""}\0${o.object.metadata.name}`;

export class PoolSource {
  readonly #inCluster: Informer<typeof InClusterIPPools>;
  readonly #global: Informer<typeof GlobalInClusterIPPools>;
  #namespaces: Informer<typeof Namespaces> | null = null;
  #scheduled = false;
  #base: PoolSetup;
  #last = "";

  constructor(readonly options: PoolSourceOptions) {
    this.#base = options.base;
    const watch = { onEvent: () => this.#schedule(), onSynced: () => this.#schedule(), onError: options.onError };
    this.#inCluster = new Informer(options.client, InClusterIPPools, watch);
    this.#global = new Informer(options.client, GlobalInClusterIPPools, watch);
  }

  /** Starts watching; resolves once both kinds are listed and the first setup is handed over. */
  async start(): Promise<void> {
    this.#inCluster.start();
    this.#global.start();
    await Promise.all([this.#inCluster.synced, this.#global.synced]);
    await this.#publish();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#inCluster.stop(), this.#global.stop(), this.#namespaces?.stop()]);
  }

  /** The config file changed (SIGHUP): the same objects over a new base. */
  async rebase(base: PoolSetup): Promise<void> {
    this.#base = base;
    this.#last = "";
    await this.#publish();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Events come in bursts (a list, an edit touching both kinds): one setup per burst.
    setTimeout(() => {
      this.#scheduled = false;
      this.#publish().catch((error) => this.options.onError?.(error));
    }, 20);
  }

  /** Every pool object as last seen, those being deleted too. */
  all(): PoolObject[] {
    return [
      ...this.#inCluster.list().map((object) => ({ kind: "InClusterIPPool" as const, object })),
      ...this.#global.list().map((object) => ({ kind: "GlobalInClusterIPPool" as const, object })),
    ];
  }

  /** The object a pool name stands for (see poolNameOf). */
  find(pool: string): PoolObject | undefined {
    return this.all().find((o) => poolNameOf(o.kind, o.object.metadata.namespace, o.object.metadata.name!) === pool);
  }

  #objects(): PoolObject[] {
    // Being deleted: a pool is gone for allocation as soon as its deletion begins.
    return this.all().filter((o) => !o.object.metadata.deletionTimestamp).sort((a, b) => (created(a) < created(b) ? -1 : 1));
  }

  /** Namespaces matching each selector, watching Namespaces from the first selector on. */
  async #selected(pools: ObjectPool[]): Promise<(p: ObjectPool) => string[]> {
    if (!pools.some((p) => p.selector)) return () => [];
    if (!this.#namespaces) {
      this.#namespaces = new Informer(this.options.client, Namespaces, { onEvent: () => this.#schedule(), onError: this.options.onError }).start();
      await this.#namespaces.synced;
    }
    const all: Namespace[] = this.#namespaces.list();
    return (p) => (p.selector ? all.filter((ns) => matchesSelector(p.selector!, ns.metadata.labels)).map((ns) => ns.metadata.name!) : []);
  }

  async #publish(): Promise<void> {
    const problems: string[] = [];
    const made: ObjectPool[] = [];
    for (const o of this.#objects()) {
      const result = poolOfObject(o);
      if ("error" in result) problems.push(result.error);
      else made.push(result);
    }
    const selected = await this.#selected(made);
    const pools = new Map<string, NamedPool>(this.#base.pools);
    for (const p of made) {
      const pool = withSelected(p, selected(p));
      const why = pools.has(pool.name) ? `pool ${pool.name} is defined already (the config file's wins)` : overlapWith(pool, pools.values());
      if (why) problems.push(`${pool.name}: ${why}`);
      else pools.set(pool.name, pool);
    }
    const fingerprint = JSON.stringify([[...pools.values()].map((p) => [p.name, p.input]), problems]);
    if (fingerprint === this.#last) return;
    this.#last = fingerprint;
    await this.options.onChange({ pools, defaults: this.#base.defaults }, problems);
  }
}
