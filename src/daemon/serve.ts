/**
 * `ipamd serve`: the node daemon. It owns the socket's lifecycle (private directory, 0600
 * socket, stale-socket cleanup, refusing to run twice) and shuts down cleanly on SIGTERM:
 * in-flight requests finish, the store closes, the socket goes away.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { MAX_BODY_BYTES, Paths } from "../protocol.ts";
import { SqliteStore } from "../store/sqlite.ts";
import { VERSION } from "../version.ts";
import { createApp } from "./app.ts";
import { ConfigError, loadConfig, resolveSettings, type ServeSettings } from "./config.ts";
import { IpamService } from "./ipam-service.ts";
import { poolReports } from "./pool-report.ts";

/** Whether a daemon answers on this socket right now. */
async function answers(socket: string): Promise<boolean> {
  try {
    const res = await fetch(`http://ipamd${Paths.status}`, { unix: socket, signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function prepareSocket(socket: string): Promise<void> {
  const { mkdir, chmod, unlink, lstat } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  const dir = dirname(socket);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (dir.startsWith("/run/") || dir === "/run") await chmod(dir, 0o700);
  const existing = await lstat(socket).catch(() => null);
  if (!existing) return;
  if (!existing.isSocket()) throw new IpamError(ErrorCode.IoFailure, `${socket} exists and is not a socket; refusing to replace it`);
  if (await answers(socket)) throw new IpamError(ErrorCode.IoFailure, `another ipamd is already serving ${socket}`);
  await unlink(socket); // left behind by a daemon that crashed
}

export interface RunningDaemon {
  settings: ServeSettings;
  stop(): Promise<void>;
}

export async function startDaemon(flags: Partial<ServeSettings> & { config?: string }): Promise<RunningDaemon> {
  const log = createLogger();
  const { hostname } = await import("node:os");
  const loaded = await loadConfig(flags.config);
  const settings = resolveSettings(flags, loaded.config, hostname());
  await prepareSocket(settings.socket);
  const { mkdir, unlink, chmod } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  await mkdir(dirname(settings.db), { recursive: true, mode: 0o700 });
  let store: SqliteStore;
  try {
    store = await SqliteStore.open(settings.db);
  } catch (err) {
    throw new IpamError(ErrorCode.IoFailure, `cannot open store ${settings.db}: ${(err as Error).message} (is another ipamd using it?)`);
  }
  const ipam = await IpamService.start(store, { node: settings.node, pools: loaded.pools });
  // A reload re-reads the pools only; socket, db and node need a restart. A bad file keeps
  // the running config and says why.
  const reload = async (): Promise<{ pools: string[] }> => {
    const next = await loadConfig(flags.config);
    await ipam.reconfigure(next.pools);
    const pools = [...next.pools.keys()];
    log.info("configuration reloaded", { pools });
    for (const report of await poolReports(ipam, store)) {
      if (report.orphans.count > 0) log.warn("pool has orphaned addresses outside its definition", { pool: report.name, orphans: report.orphans.count, sample: report.orphans.sample });
    }
    return { pools };
  };
  const app = createApp(ipam, { onUnexpectedError: (err) => log.error("unexpected error", err), reload });
  const oldMask = process.umask(0o177); // the socket is born 0600: no window where others can connect
  const server = Bun.serve({ unix: settings.socket, fetch: app.fetch, maxRequestBodySize: MAX_BODY_BYTES });
  process.umask(oldMask);
  await chmod(settings.socket, 0o600);
  log.info("ipamd serving", { version: VERSION, socket: settings.socket, db: settings.db, node: settings.node, allocations: ipam.allocationCount });

  const onHangup = () => {
    reload().catch((err) => log.error("reload failed; keeping the running configuration", err));
  };
  process.on("SIGHUP", onHangup);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      process.off("SIGHUP", onHangup);
      await server.stop(false); // stop accepting; requests in flight finish
      await store.close();
      await unlink(settings.socket).catch(() => undefined);
      log.info("ipamd stopped");
    })());
  return { settings, stop };
}

/** The `serve` subcommand: run until SIGTERM/SIGINT. */
export async function serveCommand(flags: Partial<ServeSettings> & { config?: string }): Promise<number> {
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(flags);
  } catch (err) {
    const msg = err instanceof IpamError || err instanceof ConfigError ? err.message : String((err as Error)?.message ?? err);
    process.stderr.write(`ipamd serve: ${msg}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  await daemon.stop();
  return 0;
}
