/**
 * `ipamd serve`: the node daemon. It owns the socket's lifecycle (private directory, 0600
 * socket, stale-socket cleanup, refusing to run twice) and shuts down cleanly on SIGTERM:
 * in-flight requests finish, the store closes, the socket goes away.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import type { ConsolaInstance } from "consola/core";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import { createLogger } from "../log.ts";
import { VERSION } from "../version.ts";
import { createApp } from "./app.ts";
import { ReadGate } from "./read-gate.ts";
import { BODY_BACKSTOP_BYTES } from "./http-errors.ts";
import { ConfigError, loadConfig, resolveSettings, type ServeFlags, type ServeSettings, sharedSettingsOf } from "./config.ts";
import { startAdminListener } from "./admin-listener.ts";
import { Engine } from "../engine/engine.ts";
import { type OpenedStore, openStore, storeLocation } from "./open-store.ts";
import { scheduleSweeps } from "./sweeps.ts";
import { DaemonMetrics } from "./metrics.ts";
import { UtilizationWatch } from "./observability.ts";
import { poolReports, usageOf } from "./pool-report.ts";
import { Reclaimer } from "./reclaim.ts";
import { claimSocket } from "./socket.ts";
import { StoreHealth } from "./store-health.ts";
import { poolsFromOf, watchKubePools } from "./kube-pools.ts";
import type { PoolSource } from "../pool-source/pool-source.ts";

export interface RunningDaemon {
  settings: ServeSettings;
  /** Resolves on SIGTERM or SIGINT, taken from the moment a listener could take a request. */
  signalled: Promise<void>;
  stop(): Promise<void>;
}

/** The engine over the store, with its observers: per-allocation metrics and utilization warnings. */
async function startEngine(store: OpenedStore, settings: ServeSettings, setup: PoolSetup, metrics: DaemonMetrics, health: StoreHealth, log: ConsolaInstance): Promise<Engine> {
  store.onCommit = (seconds, callers) => {
    metrics.commitDuration.observe(seconds);
    metrics.commitBatch.observe(callers);
    health.succeeded();
  };
  let watch: UtilizationWatch | undefined;
  const engine = await Engine.start(store, {
    node: settings.node,
    pools: setup.pools,
    defaultPools: setup.defaults,
    blockSizes: { v4: sharedSettingsOf(settings).blockPrefixV4, v6: sharedSettingsOf(settings).blockPrefixV6 },
    nodeTtlSeconds: sharedSettingsOf(settings).nodeTtlSeconds,
    observer: {
      allocated: (record) => watch?.allocated(record),
      released: (record, kind) => watch?.released(record, kind),
    },
  });
  watch = new UtilizationWatch(metrics, log, (record) => usageOf(engine, record), settings.utilizationThresholds);
  if (settings.store === "sqlite" && [...setup.pools.values()].some((p) => p.nodeSubnet)) {
    log.warn("supernet pools claim node subnets in this node's own database: with several nodes, use a shared store (--store kubernetes or etcd) so no two nodes claim the same subnet");
  }
  return engine;
}

/** Serves the app on the unix socket, born 0600: there is no moment when others can connect. */
async function listenPrivately(socket: string, app: { fetch: (req: Request) => Response | Promise<Response> }) {
  const { chmod } = await import("node:fs/promises");
  const oldMask = process.umask(0o177);
  const server = Bun.serve({ unix: socket, fetch: app.fetch, maxRequestBodySize: BODY_BACKSTOP_BYTES });
  process.umask(oldMask);
  await chmod(socket, 0o600);
  return server;
}

/**
 * A reload re-reads the pools only; socket, db and node need a restart. A bad file keeps the
 * running config and says why; pools left with orphans (addresses outside their new
 * definition) are named.
 */
function reloader(config: string | undefined, engine: Engine, log: ConsolaInstance, kube: () => PoolSource | null): () => Promise<{ pools: string[] }> {
  return async () => {
    const next = await loadConfig(config);
    // With pools from kubernetes the file is their base: the objects' pools stay.
    const source = kube();
    if (source) await source.rebase(next.setup);
    else await engine.reconfigure(next.setup);
    const pools = [...engine.registry.named.keys()];
    log.info("configuration reloaded", { pools });
    for (const report of (await poolReports(engine, engine.store)).pools) {
      if (report.orphans.count > 0) log.warn("pool has orphaned addresses outside its definition", { pool: report.name, orphans: report.orphans.count, sample: report.orphans.sample });
    }
    return { pools };
  };
}

export async function startDaemon(flags: ServeFlags): Promise<RunningDaemon> {
  if (flags.adminHosts?.length && !flags.adminListen) throw new IpamError(ErrorCode.InvalidNetworkConfig, "--admin-host needs --admin-listen (it names the TCP admin listener)");
  const log = createLogger();
  const { hostname } = await import("node:os");
  const loaded = await loadConfig(flags.config);
  const settings = resolveSettings(flags, loaded.config, hostname());
  // Everything the daemon creates (store files, socket, lock) is private, whatever the umask.
  process.umask(0o077);
  const { unlink } = await import("node:fs/promises");
  // The store's lock first: a second daemon for the same store stops here, before it has
  // touched the socket the first one serves.
  const store = await openStore(settings, log);
  const socketClaim = await claimSocket(settings.socket).catch(async (err) => {
    await store.close();
    throw err;
  });
  const metrics = new DaemonMetrics();
  const health = new StoreHealth(() => store.probe(), log);
  const engine = await startEngine(store, settings, loaded.setup, metrics, health, log);
  const reclaimer = new Reclaimer(engine, { graceMs: settings.reclaimGraceMs, now: Date.now, netnsDirs: settings.reclaimNetnsDirs });
  const kube = poolsFromOf(flags.poolsFrom) === "kubernetes" ? await watchKubePools(engine, loaded.setup, flags.kubeconfig, log) : null;
  const reload = reloader(flags.config, engine, log, () => kube);
  // One read gate for both listeners: they share the event loop that answers pod starts.
  const appOptions = { onUnexpectedError: (err: unknown) => log.error("unexpected error", err), reload, reclaimer, metrics, log, health, readGate: new ReadGate() };
  const app = createApp(engine, appOptions);
  // From the moment a listener may take a request, a signal must drain it, not kill it: the
  // start-up still has a step after that (the store's first health check, a round trip on
  // etcd), and the default action would close every connection unanswered. Before, nothing is
  // in flight, and a signal stops a start that may be stuck (a store out of reach) at once.
  const signalled = new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  const adminServer = flags.adminListen
    ? await startAdminListener(engine, { listen: flags.adminListen, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, clientCa: flags.clientCa, hosts: flags.adminHosts }, appOptions)
    : undefined;
  if (adminServer) log.info("admin listener", { url: adminServer.url.href });
  const server = await listenPrivately(settings.socket, app);
  const where = storeLocation(store, settings);
  const serving = { version: VERSION, socket: settings.socket, store: settings.store, ...where, node: settings.node, allocations: engine.allocationCount };
  // A daemon whose store cannot persist (a full disk) says so instead of claiming to serve:
  // it answers STATUS with 50 and ADD with the fault until the store works again.
  await health.check();
  if (health.current) log.error(`ipamd answering, but NOT serving pods: ${health.current.message}`, serving);
  else log.info("ipamd serving", serving);

  const onHangup = () => {
    reload().catch((err) => log.error("reload failed; keeping the running configuration", err));
  };
  process.on("SIGHUP", onHangup);

  const sweeps = scheduleSweeps(reclaimer, store, { intervalMs: settings.reclaimIntervalMs, historyRetentionMs: settings.historyRetentionMs }, log);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      sweeps.stop();
      process.off("SIGHUP", onHangup);
      await kube?.stop();
      await adminServer?.stop(false);
      await server.stop(false); // stop accepting; requests in flight finish
      await store.close();
      await unlink(settings.socket).catch(() => undefined);
      await socketClaim.release();
      log.info("ipamd stopped");
    })());
  return { settings, signalled, stop };
}

/** The `serve` subcommand: run until SIGTERM/SIGINT. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(flags);
  } catch (err) {
    const msg = err instanceof IpamError || err instanceof ConfigError ? err.message : String((err as Error)?.message ?? err);
    process.stderr.write(`ipamd serve: ${msg}\n`);
    return 1;
  }
  await daemon.signalled;
  await daemon.stop();
  return 0;
}

/**
 * `serve --check-config`: resolves flags and config file exactly as `serve` would, prints the
 * settings as JSON and exits without opening the socket or the store (for manifests and
 * deploy scripts). Store credentials are named, not read: they may live on another host.
 */
export async function checkConfigCommand(flags: ServeFlags): Promise<number> {
  const { hostname } = await import("node:os");
  try {
    const loaded = await loadConfig(flags.config);
    const settings = resolveSettings(flags, loaded.config, hostname());
    if (settings.store === "etcd" && settings.etcd.endpoints.length === 0) throw new ConfigError("--store etcd needs --etcd-endpoints");
    const poolsFrom = poolsFromOf(flags.poolsFrom);
    process.stdout.write(`${JSON.stringify({ ...settings, pools: [...loaded.setup.pools.keys()], defaultPools: loaded.setup.defaults, poolsFrom })}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ipamd serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
