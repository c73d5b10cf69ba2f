/**
 * `ipamd controller`: Cluster API IPAddressClaims served from ipamd's pools (one active
 * replica, chosen by a Lease). While it leads, it runs an engine on the shared store the node
 * daemons use — so a machine's address and a pod's can never be the same — with the pools
 * watched as objects, and reconciles claims from a work queue; pool status and finalizers
 * follow. Leadership lost means stop at once: the caller exits, and the replica campaigns
 * again when restarted.
 */
import type { ConsolaInstance } from "consola/core";
import type { BlockSizes } from "../engine/blocks.ts";
import { Engine } from "../engine/engine.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer, objectKey } from "../kube/informer.ts";
import { LeaderElector } from "../kube/leader.ts";
import { IPAddressClaimsV1beta2, IPAddressesV1beta2 } from "../kube/resources.ts";
import { poolNameOf } from "../pool-source/pool-objects.ts";
import { PoolSource } from "../pool-source/pool-source.ts";
import { installObjectPools } from "../pool-source/install.ts";
import type { Store } from "../store/store.ts";
import { ClaimReconciler } from "./claims.ts";
import { claimNetwork, isPaused, type PoolKind, WATCH_FILTER_LABEL } from "./contract.ts";
import { PoolStatusWriter } from "./pool-status.ts";
import { WorkQueue } from "./work-queue.ts";

export interface ControllerOptions {
  client: KubeClient;
  /** Opened once leading (a store holds locks and announces the node): called then. */
  openStore: () => Promise<Store>;
  /** The node name the controller's allocations carry (its blocks on a shared store). */
  node: string;
  /** The store's block sizes and node lifetime: the daemons' (from the same config file). */
  blockSizes?: BlockSizes;
  nodeTtlSeconds?: number;
  identity: string;
  leaseNamespace: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** How often every claim not yet Ready, and every pool's status, is looked at again. */
  resyncMs?: number;
  /**
   * Only claims labelled cluster.x-k8s.io/watch-filter with this value (Cluster API's
   * convention for running several controllers side by side); all claims when absent.
   */
  watchFilter?: string;
  log: ConsolaInstance;
}

export const FIELD_MANAGER = "ipamd-controller";

export interface RunningController {
  /** Resolves when the controller stops: "stopped" (stop() was called) or "lost" (leadership). */
  done: Promise<"stopped" | "lost">;
  stop(): Promise<void>;
}

export async function runController(o: ControllerOptions): Promise<RunningController> {
  let lost!: () => void;
  const leadershipLost = new Promise<void>((resolve) => (lost = resolve));
  const elector = new LeaderElector({
    client: o.client,
    namespace: o.leaseNamespace,
    // One Lease per watch filter: controllers of different filters run side by side.
    name: o.watchFilter ? `ipamd-controller-${o.watchFilter}` : "ipamd-controller",
    identity: o.identity,
    leaseDurationSeconds: o.leaseDurationSeconds,
    renewDeadlineMs: o.renewDeadlineMs,
    retryPeriodMs: o.retryPeriodMs,
    onStoppedLeading: () => lost(),
    onNewLeader: (who) => o.log.info("controller leader", { leader: who }),
    onError: (error) => o.log.warn("leader election", { error: (error as Error).message }),
  }).start();
  await elector.whenLeading();
  o.log.info("leading: serving IPAddressClaims", { identity: o.identity });
  const parts = await startLeading(o, () => elector.isLeader);
  let stopping: Promise<void> | null = null;
  const halt = () =>
    (stopping ??= (async () => {
      await parts.stop();
      await elector.stop();
    })());
  let finish!: (why: "stopped" | "lost") => void;
  const done = new Promise<"stopped" | "lost">((resolve) => (finish = resolve));
  void leadershipLost.then(async () => {
    o.log.error("leadership lost: stopping", { identity: o.identity });
    await halt();
    finish("lost");
  });
  return {
    done,
    stop: async () => {
      await halt();
      finish("stopped");
    },
  };
}

/** Everything that runs while leading; stop() undoes it. */
async function startLeading(o: ControllerOptions, isLeader: () => boolean): Promise<{ stop(): Promise<void> }> {
  const store = await o.openStore();
  const engine = await Engine.start(store, { node: o.node, ...(o.blockSizes ? { blockSizes: o.blockSizes } : {}), ...(o.nodeTtlSeconds ? { nodeTtlSeconds: o.nodeTtlSeconds } : {}) });
  // The queue and the status writer are made below; the handlers only run once started.
  let queue: WorkQueue | undefined;
  let status: PoolStatusWriter | undefined;
  const { claims, addresses } = claimInformers(o, (key) => queue?.add(key), (pool) => status?.touch(pool));
  const enqueueAll = () => {
    for (const c of claims.list()) if (c.status?.conditions?.find((x) => x.type === "Ready")?.status !== "True" || c.metadata.deletionTimestamp) queue?.add(objectKey(c));
  };
  const source = leaderPoolSource(o, engine, () => {
    enqueueAll();
    status?.touchAll();
  });
  status = new PoolStatusWriter({ client: o.client, engine, source, addresses, log: o.log });
  const poolObject = (kind: PoolKind, namespace: string | null, name: string) => {
    const found = source.all().find((p) => p.kind === kind && p.object.metadata.name === name && (p.object.metadata.namespace ?? null) === namespace);
    return found && !found.object.metadata.deletionTimestamp ? { uid: found.object.metadata.uid!, paused: isPaused(found.object.metadata) } : undefined;
  };
  const network = claimNetwork(o.watchFilter);
  const reconciler = new ClaimReconciler({ client: o.client, engine, network, isLeader, claims, poolObject, touched: (pool) => status.touch(pool), fieldManager: FIELD_MANAGER, log: o.log });
  const collect = () =>
    reconciler
      .collect(claims.list().filter((c) => c.metadata.uid).map((c) => c.metadata.uid!))
      .then((released) => released.length > 0 && o.log.info("released the addresses of claims that are gone", { addresses: released }))
      .catch((error) => o.log.warn("collecting claims that are gone", { error: (error as Error).message }));
  const work = new WorkQueue((key) => reconciler.reconcile(key), { onError: (key, error) => o.log.warn("claim not reconciled; retrying", { claim: key, error: (error as Error).message }) });
  queue = work;
  await source.start();
  claims.start();
  addresses.start();
  await Promise.all([claims.synced, addresses.synced]);
  enqueueAll();
  status.touchAll();
  void collect();
  const resync = setInterval(() => {
    enqueueAll();
    status.touchAll();
    void collect();
  }, o.resyncMs ?? 30_000);
  return {
    stop: async () => {
      clearInterval(resync);
      status.stop();
      await work.stop();
      await Promise.all([claims.stop(), addresses.stop(), source.stop()]);
      await store.close();
    },
  };
}

/** The claims and their IPAddresses, watched: a change to either puts the claim in the queue. */
function claimInformers(o: ControllerOptions, enqueue: (key: string) => void, touchPool: (pool: string) => void) {
  const labelSelector = o.watchFilter ? { labelSelector: `${WATCH_FILTER_LABEL}=${o.watchFilter}` } : {};
  const claims = new Informer(o.client, IPAddressClaimsV1beta2, {
    ...labelSelector,
    onEvent: (e) => enqueue(objectKey(e.object)),
    onError: (e) => o.log.warn("watching claims", { error: (e as Error).message }),
  });
  const addresses = new Informer(o.client, IPAddressesV1beta2, {
    ...labelSelector,
    // An address changed or deleted by someone else: its claim looks again, its pool's counts too.
    onEvent: (e) => {
      enqueue(`${e.object.metadata.namespace}/${e.object.spec.claimRef.name}`);
      touchPool(poolNameOf(e.object.spec.poolRef.kind as PoolKind, e.object.metadata.namespace, e.object.spec.poolRef.name));
    },
    onError: (e) => o.log.warn("watching addresses", { error: (e as Error).message }),
  });
  return { claims, addresses };
}

/** The pool objects, installed into the leader's engine as they change; then `installed` runs. */
function leaderPoolSource(o: ControllerOptions, engine: Engine, installed: () => void): PoolSource {
  return new PoolSource({
    client: o.client,
    base: { pools: new Map(), defaults: [] },
    onChange: async (setup, problems, fromObjects) => {
      try {
        await installObjectPools(engine, setup, problems, fromObjects);
      } catch (error) {
        o.log.error("pools not installed; keeping the running pools (tried again shortly)", { error: (error as Error).message });
        throw error;
      } finally {
        for (const problem of problems) o.log.warn("a pool object makes no pool", { problem });
      }
      installed();
    },
    onError: (e) => o.log.warn("watching pools", { error: (e as Error).message }),
  });
}
