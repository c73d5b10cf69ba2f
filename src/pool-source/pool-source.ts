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
  /**
   * A new setup, whenever the objects (or the namespaces a selector matches) change: it
   * should reject when the setup could not be installed (it is tried again a little later).
   * `fromObjects` names the pools the objects made (the rest are the config file's).
   */
  onChange: (setup: PoolSetup, problems: string[], fromObjects: Set<string>) => void | Promise<void>;
  onError?: (error: unknown) => void;
}

const created = (o: PoolObject) => `${o.object.metadata.creationTimestamp ?? ""}\0${o.kind}\0${o.object.metadata.namespace ?? ""}\0${o.object.metadata.name}`;

/** How long a publish waits for Namespaces to be listed (a missing permission must not stall every pool). */
const NAMESPACES_WAIT_MS = 5_000;
/** After a setup the engine could not install: try it again after this long. */
const RETRY_MS = 5_000;

export class PoolSource {
  readonly #inCluster: Informer<typeof InClusterIPPools>;
  readonly #global: Informer<typeof GlobalInClusterIPPools>;
  #namespaces: Informer<typeof Namespaces> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  #base: PoolSetup;
  /** The setup last installed: the same one again is not handed over. */
  #last = "";
  /** Publishes run one after another, so an older setup can never be installed after a newer one. */
  #chain: Promise<void> = Promise.resolve();

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
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await Promise.all([this.#inCluster.stop(), this.#global.stop(), this.#namespaces?.stop()]);
    await this.#chain.catch(() => undefined);
  }

  /** The config file changed (SIGHUP): the same objects over a new base; rejects if it is not installed. */
  async rebase(base: PoolSetup): Promise<void> {
    this.#base = base;
    this.#last = "";
    await this.#publish();
  }

  #schedule(delayMs = 20): void {
    if (this.#timer || this.#stopped) return;
    // Events come in bursts (a list, an edit touching both kinds): one setup per burst.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#publish().catch((error) => {
        this.options.onError?.(error);
        this.#schedule(RETRY_MS);
      });
    }, delayMs);
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

  /**
   * Namespaces matching each selector, watching Namespaces from the first selector on. Until
   * they are listed (or if they may not be), a selector serves none, and says so.
   */
  async #selected(pools: ObjectPool[], problems: string[]): Promise<(p: ObjectPool) => string[]> {
    if (!pools.some((p) => p.selector)) return () => [];
    if (!this.#namespaces) {
      this.#namespaces = new Informer(this.options.client, Namespaces, { onEvent: () => this.#schedule(), onSynced: () => this.#schedule(), onError: this.options.onError }).start();
    }
    const listed = await Promise.race([this.#namespaces.synced.then(() => true, () => false), Bun.sleep(NAMESPACES_WAIT_MS).then(() => false)]);
    if (!listed) {
      problems.push("Namespaces are not listed (yet): pools with a namespaceSelector serve no namespace until they are (may it list and watch namespaces?)");
      return () => [];
    }
    const all: Namespace[] = this.#namespaces.list();
    return (p) => (p.selector ? all.filter((ns) => matchesSelector(p.selector!, ns.metadata.labels)).map((ns) => ns.metadata.name!) : []);
  }

  #publish(): Promise<void> {
    const next = this.#chain.catch(() => undefined).then(() => this.#publishNow());
    this.#chain = next;
    return next;
  }

  async #publishNow(): Promise<void> {
    if (this.#stopped) return;
    const problems: string[] = [];
    const made: ObjectPool[] = [];
    for (const o of this.#objects()) {
      const result = poolOfObject(o);
      if ("error" in result) problems.push(result.error);
      else made.push(result);
    }
    const selected = await this.#selected(made, problems);
    const pools = new Map<string, NamedPool>(this.#base.pools);
    for (const p of made) {
      const pool = withSelected(p, selected(p));
      const why = pools.has(pool.name) ? `pool ${pool.name} is defined already (the config file's wins)` : overlapWith(pool, pools.values());
      if (why) problems.push(`${pool.name}: ${why}`);
      else pools.set(pool.name, pool);
    }
    const fingerprint = JSON.stringify([[...pools.values()].map((p) => [p.name, p.input]), problems]);
    if (fingerprint === this.#last) return;
    // Remembered once installed: a setup the engine refused is tried again (see #schedule).
    await this.options.onChange({ pools, defaults: this.#base.defaults }, problems, new Set(made.map((p) => p.pool.name)));
    this.#last = fingerprint;
  }
}
