/**
 * Opens the store `serve` was configured with: the embedded sqlite file, or etcd shared by
 * every node. Whatever is wrong (a missing certificate, a refused client certificate, an
 * endpoint that does not answer) stops the daemon at start-up with a message saying what.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { EtcdClient, type EtcdTls } from "../store/etcd-client.ts";
import { EtcdStore } from "../store/etcd.ts";
import { SqliteStore } from "../store/sqlite.ts";
import { StorageFault } from "../store/storage-fault.ts";
import type { ServeSettings } from "./config.ts";

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/?$/;

export type OpenedStore = SqliteStore | EtcdStore;

async function readPem(path: string | undefined, what: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const file = Bun.file(path);
  if (!(await file.exists())) throw new IpamError(ErrorCode.IoFailure, `${what} ${path} does not exist`);
  return file.text();
}

export async function openStore(settings: ServeSettings): Promise<OpenedStore> {
  if (settings.store === "sqlite") {
    const { mkdir } = await import("node:fs/promises");
    const { dirname } = await import("node:path");
    await mkdir(dirname(settings.db), { recursive: true, mode: 0o700 });
    return SqliteStore.open(settings.db);
  }
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
  const client = new EtcdClient(endpoints, tls, 1500);
  try {
    await client.range(prefix, undefined, { limit: 1, keysOnly: true });
  } catch (err) {
    throw new IpamError(ErrorCode.IoFailure, `cannot use etcd at ${endpoints.join(",")}: ${err instanceof StorageFault ? `${err.reason}: ${err.detail}` : (err as Error).message} (check the endpoints and --etcd-cacert/--etcd-cert/--etcd-key)`);
  }
  const store = new EtcdStore(client, prefix, settings.node);
  await store.prepare();
  return store;
}
