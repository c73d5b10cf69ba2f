/**
 * `ipamd controller [flags]`: the store flags as `serve` takes them (the shared store only: a
 * controller on a node's embedded database would hand out addresses the daemons also hand
 * out), Kubernetes credentials, and the Lease it campaigns on. Runs until SIGTERM/SIGINT, or
 * exits 1 when leadership is lost (the Deployment restarts it, and it campaigns again).
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { KubeClient } from "../kube/client.ts";
import { loadConnection } from "../kube/in-cluster.ts";
import { createLogger } from "../log.ts";
import { loadConfig, resolveSettings, type ServeFlags } from "../daemon/config.ts";
import { openStore } from "../daemon/open-store.ts";
import { runController } from "./controller.ts";

export interface ControllerFlags extends ServeFlags {
  leaseNamespace?: string;
  leaseDuration?: string;
  identity?: string;
  resyncSeconds?: string;
  watchFilter?: string;
}

function leaseSeconds(text: string | undefined): number {
  const n = Number(text ?? 15);
  if (!Number.isInteger(n) || n < 2 || n > 300) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--lease-duration must be whole seconds from 2 to 300, not "${text}"`);
  return n;
}

function resyncMs(text: string | undefined): number {
  const n = Number(text ?? 30);
  if (!(n >= 1 && n <= 3600)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--resync-seconds must be from 1 to 3600, not "${text}"`);
  return n * 1000;
}

export async function controllerCommand(flags: ControllerFlags): Promise<number> {
  const log = createLogger();
  const { hostname } = await import("node:os");
  const loaded = await loadConfig(flags.config);
  // The controller's allocations carry its own node name (its blocks on the shared store).
  const settings = resolveSettings({ ...flags, node: flags.node ?? "cluster-api" }, loaded.config, hostname());
  if (settings.store !== "etcd") throw new IpamError(ErrorCode.InvalidNetworkConfig, "ipamd controller needs the shared store (--store etcd): it allocates beside every node's daemon");
  const connection = loadConnection({ kubeconfig: flags.kubeconfig });
  const lease = leaseSeconds(flags.leaseDuration);
  const controller = await runController({
    client: KubeClient.connect(connection),
    openStore: () => openStore(settings, log),
    node: settings.node,
    blockSizes: { v4: settings.etcd.blockPrefixV4, v6: settings.etcd.blockPrefixV6 },
    nodeTtlSeconds: settings.etcd.nodeTtlSeconds,
    identity: flags.identity ?? `${hostname()}-${process.pid}`,
    leaseNamespace: flags.leaseNamespace ?? connection.namespace,
    leaseDurationSeconds: lease,
    renewDeadlineMs: Math.round(lease * 666),
    retryPeriodMs: Math.round(lease * 133),
    resyncMs: resyncMs(flags.resyncSeconds),
    ...(flags.watchFilter ? { watchFilter: flags.watchFilter } : {}),
    log,
  });
  const onSignal = () => void controller.stop();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const why = await controller.done;
  log.info("controller stopped", { why });
  return why === "lost" ? 1 : 0;
}
