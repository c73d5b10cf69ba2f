/**
 * Opens the store `serve` was configured with: the embedded sqlite file, or one shared by every
 * node (etcd, or the Kubernetes API). Whatever is wrong (a missing certificate, a refused
 * client certificate, an endpoint that does not answer, RBAC, CRDs not applied) stops the
 * daemon at start-up with a message saying what.
 */
import type { ConsolaInstance } from "consola/core";
import { ErrorCode, IpamError } from "../errors.ts";
import { EtcdClient, type EtcdTls } from "../store/etcd-client.ts";
import { type EtcdLayout, etcdLayout } from "../store/etcd-layouts.ts";
import { ETCD_NAMESPACE, EtcdObjects } from "../store/etcd-objects.ts";
import { EtcdStore } from "../store/etcd.ts";
import { KubeStore } from "../store/kube.ts";
import type { ObjectClient } from "../store/kube/api.ts";
import type { BlockPrefixes } from "../store/kube/names.ts";
import { SqliteStore } from "../store/sqlite.ts";
import { StorageFault } from "../store/storage-fault.ts";
import type { ServeSettings } from "./config.ts";
import { CALL_TIMEOUT_MS } from "../protocol-command.ts";

/** What an ADD on etcd needs besides its commit (planning, answering: a fraction of a millisecond): ample. */
const ETCD_MARGIN_MS = 200;

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/?$/;

export type OpenedStore = SqliteStore | EtcdStore | KubeStore;

async function readPem(path: string | undefined, what: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const file = Bun.file(path);
  if (!(await file.exists())) throw new IpamError(ErrorCode.IoFailure, `${what} ${path} does not exist`);
  return file.text();
}

async function makeDbDir(db: string): Promise<void> {
  const { mkdir } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  await mkdir(dirname(db), { recursive: true, mode: 0o700 });
}

export async function openStore(settings: ServeSettings, log?: ConsolaInstance): Promise<OpenedStore> {
  if (settings.store === "sqlite") {
    await makeDbDir(settings.db);
    return SqliteStore.open(settings.db);
  }
  if (settings.store === "kubernetes") return openKubeStore(settings, log);
  return openEtcdStore(settings, log);
}

/** Where the store is, for the daemon's start-up line. */
export function storeLocation(store: OpenedStore, settings: ServeSettings): Record<string, string> {
  if (settings.store === "etcd") return { etcd: settings.etcd.endpoints.join(","), prefix: settings.etcd.prefix, layout: store instanceof EtcdStore ? "per-address" : "blocks", ...(store instanceof KubeStore ? { db: settings.db } : {}) };
  if (store instanceof KubeStore) return { kubernetes: store.api.client.server, namespace: store.namespace, db: settings.db };
  return { db: settings.db };
}

/**
 * The Kubernetes-API store: credentials from --kubeconfig, $KUBECONFIG, the pod's
 * ServiceAccount or ~/.kube/config; its objects in --kube-namespace (the credentials'
 * namespace by default: the DaemonSet's own); --db holds the node's history and cursors.
 */
async function openKubeStore(settings: ServeSettings, log: ConsolaInstance | undefined): Promise<KubeStore> {
  const { KubeClient } = await import("../kube/client.ts");
  const { loadConnection } = await import("../kube/in-cluster.ts");
  let connection: ReturnType<typeof loadConnection>;
  try {
    connection = loadConnection({ kubeconfig: settings.kubernetes.kubeconfig });
  } catch (err) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `--store kubernetes: ${(err as Error).message}`);
  }
  // Requests end within 2 s, so an ADD whose API server is away is answered 11 within the plugin's deadline.
  const client = KubeClient.connect(connection, { timeoutMs: 2000, userAgent: `ipamd node ${settings.node}` });
  const namespace = settings.kubernetes.namespace ?? connection.namespace;
  const { blockPrefixV4: v4, blockPrefixV6: v6 } = settings.kubernetes;
  return openBlockStore(client, namespace, settings, { v4, v6 }, log, (why) =>
    new IpamError(ErrorCode.IoFailure, `cannot use the Kubernetes API at ${connection.server} (namespace ${namespace}): ${why} (check the credentials (${connection.source}), the ServiceAccount's RBAC, and that k8s/crds/ is applied)`),
  );
}

/**
 * The block store (store/kube.ts) on `client`'s objects, the node's history and cursors in --db.
 * A store that cannot be opened is `cannot`'s error, saying what to check; a wrong setting is
 * its own error.
 */
async function openBlockStore(client: ObjectClient, namespace: string, settings: ServeSettings, blockPrefixes: BlockPrefixes, log: ConsolaInstance | undefined, cannot: (why: string) => IpamError): Promise<KubeStore> {
  await makeDbDir(settings.db);
  try {
    return await KubeStore.open({
      client, namespace, node: settings.node, db: settings.db, blockPrefixes,
      onWatchError: (err) => log?.warn("watching the blocks (IPAMBlock objects) failed; retrying", err),
      onInvalidBlock: ({ name, resourceVersion, message }) => log?.error("a block ipamd cannot read is left out; writes that meet it fail until it is mended", { block: name, resourceVersion, problem: message }),
    });
  } catch (err) {
    throw openFailure(err, cannot);
  }
}

/** A failure to open a store: a wrong setting as it is, anything else (the store's fault, an unreadable answer) as `cannot` words it. */
function openFailure(err: unknown, cannot: (why: string) => IpamError): unknown {
  if (err instanceof IpamError && !(err instanceof StorageFault)) return err;
  return cannot(err instanceof StorageFault ? `${err.reason}: ${err.detail}` : (err as Error).message);
}

async function openEtcdStore(settings: ServeSettings, log: ConsolaInstance | undefined): Promise<EtcdStore | KubeStore> {
  const { endpoints, prefix } = settings.etcd;
  if (endpoints.length === 0) throw new IpamError(ErrorCode.InvalidNetworkConfig, "--store etcd needs --etcd-endpoints");
  for (const e of endpoints) {
    if (e.startsWith("http://") && !LOOPBACK.test(e)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `etcd endpoint ${e}: plain http is only allowed on loopback; use https with client certificates`);
    if (!/^https?:\/\//.test(e)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `etcd endpoint ${e} is not an http(s) URL`);
  }
  const tls: EtcdTls = {
    ca: await readPem(settings.etcd.cacert, "etcd CA certificate"),
    cert: await readPem(settings.etcd.cert, "etcd client certificate"),
    key: await readPem(settings.etcd.key, "etcd client key"),
  };
  if (endpoints.some((e) => e.startsWith("https:")) && (!tls.cert || !tls.key)) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, "https etcd endpoints need --etcd-cert and --etcd-key (and usually --etcd-cacert)");
  }
  // An ADD makes one etcd request (its commit; no read before it), so that request may take
  // the plugin's whole wait for the daemon but a margin for the rest of the ADD: one that
  // meets a leader election (~1-2 s here after a leader is killed, more on a busy machine)
  // still gets through, and one whose etcd has lost quorum is answered 11 within the wait.
  const client = new EtcdClient(endpoints, tls, CALL_TIMEOUT_MS - ETCD_MARGIN_MS);
  const cannot = (why: string) => new IpamError(ErrorCode.IoFailure, `cannot use etcd at ${endpoints.join(",")}: ${why} (check the endpoints and --etcd-cacert/--etcd-cert/--etcd-key)`);
  let layout: EtcdLayout;
  try {
    layout = await etcdLayout(client, prefix);
  } catch (err) {
    throw openFailure(err, cannot);
  }
  if (layout === "per-address") {
    const store = new EtcdStore(client, prefix, settings.node);
    await store.prepare();
    return store;
  }
  return openBlockStore(new EtcdObjects(client, prefix, endpoints.join(",")), ETCD_NAMESPACE, settings, blockPrefixes(settings.etcd), log, cannot);
}

/** A block is one value, written whole with each batch of its changes: at most 256 addresses. */
function blockPrefixes({ blockPrefixV4: v4, blockPrefixV6: v6 }: { blockPrefixV4: number; blockPrefixV6: number }) {
  if (v4 < 24 || v6 < 120) throw new IpamError(ErrorCode.InvalidNetworkConfig, `etcd blocks of at most 256 addresses: blockPrefixV4 24-30 and blockPrefixV6 120-126 (given /${v4}, /${v6})`);
  return { v4, v6 };
}
