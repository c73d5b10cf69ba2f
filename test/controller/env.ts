/**
 * What the controller tests share: a real kube-apiserver with the pool CRDs and Cluster API's
 * (test copies), a real 3-member etcd for ipamd's store, and `dist/ipamd controller` and
 * `dist/ipamd serve --pools-from kubernetes` processes on them. Everything is registered with
 * the harness's cleanup, so a failing test leaves no process behind.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import type { KubeClient } from "../../src/kube/client.ts";
import { GlobalInClusterIPPools, InClusterIPPools, IPAddressClaimsV1beta2, IPAddressesV1beta2 } from "../../src/kube/resources.ts";
import type { IPAddressClaimV1beta2 } from "../../src/kube/schemas/capi.ts";
import { BINARY, type Daemon, onCleanup, startDaemon, tempDir, waitFor } from "../e2e/harness.ts";
import type { KubeApiserver } from "../kube/apiserver.ts";
import { CAPI_CRDS, FIELD_MANAGER, installCrds, POOL_CRDS, startWithAdmin } from "../kube/helpers.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";

export interface CapiEnv {
  kube: KubeApiserver;
  client: KubeClient;
  etcd: EtcdCluster;
}

export async function startCapiEnv(namespaces: string[]): Promise<CapiEnv> {
  const [{ kube, client }, etcd] = await Promise.all([startWithAdmin({}, namespaces), startEtcd({ members: 3 })]);
  await installCrds(client, [...POOL_CRDS, ...CAPI_CRDS, "test/kube/fixtures/capi-clusters.yaml"]);
  return { kube, client, etcd };
}

/** What the controller and the node daemons of a test share: the store's block size. */
const SHARED_CONFIG = { etcd: { blockPrefixV4: 28 } };

let prefixes = 0;
export const newPrefix = () => `/capi-${process.pid}-${prefixes++}/`;

export interface Controller {
  proc: Subprocess;
  identity: string;
  logs(): string;
  kill9(): Promise<void>;
}

const running: Controller[] = [];

/**
 * `ipamd controller` on the env, with a short resync so tests need not wait long. The lease
 * (8 s, renewed within 5.3 s) is short for failover, yet survives a loaded test machine: a
 * leader that cannot renew in time stops, and nothing restarts it here.
 * With `filter`, it serves only claims labelled with that watch filter (and campaigns on a
 * Lease of its own), so tests sharing an API server stay apart.
 */
/**
 * leaseSeconds: 8 keeps failover tests short; a test that loads the machine to its limit (200
 * plugin processes on 2 cores) gives a longer one, or a renewal held up past its deadline
 * stops the controller, which here has no Deployment to start it again.
 */
export function startController(env: CapiEnv, prefix: string, identity = "c1", filter?: string, leaseSeconds = 8): Controller {
  // The daemons' block size (see startNodeDaemon): every node of a space claims blocks alike.
  const config = join(tempDir(), "config.json");
  writeFileSync(config, JSON.stringify(SHARED_CONFIG));
  const proc = Bun.spawn(
    [
      BINARY, "controller", "--config", config, "--db", join(tempDir(), "controller.db"), "--kubeconfig", env.kube.kubeconfigPath, "--etcd-endpoints", env.etcd.endpoints.join(","), "--etcd-prefix", prefix,
      "--lease-namespace", "default", "--lease-duration", String(leaseSeconds), "--identity", identity, "--resync-seconds", "1", ...(filter ? ["--watch-filter", filter] : []),
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  let logs = "";
  void (async () => {
    for await (const chunk of proc.stderr) logs += new TextDecoder().decode(chunk);
  })();
  onCleanup(async () => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    await proc.exited;
  });
  const controller = {
    proc,
    identity,
    logs: () => logs,
    kill9: async () => {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
  running.push(controller);
  return controller;
}

/** Stops (SIGTERM: the Lease is given back) every controller a test started. */
export async function stopControllers(): Promise<void> {
  for (const c of running.splice(0)) {
    if (c.proc.exitCode === null) c.proc.kill("SIGTERM");
    await c.proc.exited;
  }
}

/** A node daemon on the same store, its pools also from the pool objects. */
export async function startNodeDaemon(env: CapiEnv, prefix: string, node: string, extraConfig: Record<string, unknown> = {}): Promise<Daemon> {
  const dir = tempDir();
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ ...SHARED_CONFIG, reclaimInterval: 0, ...extraConfig }));
  return startDaemon({
    dir,
    args: ["--config", config, "--node", node, "--store", "etcd", "--etcd-endpoints", env.etcd.endpoints.join(","), "--etcd-prefix", prefix, "--pools-from", "kubernetes", "--kubeconfig", env.kube.kubeconfigPath],
  });
}

export async function globalPool(client: KubeClient, name: string, spec: Record<string, unknown>) {
  return client.create(GlobalInClusterIPPools, { metadata: { name }, spec: spec as never }, { fieldManager: FIELD_MANAGER });
}

export async function namespacedPool(client: KubeClient, namespace: string, name: string, spec: Record<string, unknown>) {
  return client.create(InClusterIPPools, { metadata: { name, namespace }, spec: spec as never }, { fieldManager: FIELD_MANAGER });
}

export async function claim(client: KubeClient, namespace: string, name: string, pool: { kind: "InClusterIPPool" | "GlobalInClusterIPPool"; name: string }, more: { annotations?: Record<string, string>; clusterName?: string; filter?: string } = {}) {
  return client.create(
    IPAddressClaimsV1beta2,
    {
      metadata: { name, namespace, ...(more.annotations ? { annotations: more.annotations } : {}), ...(more.filter ? { labels: { "cluster.x-k8s.io/watch-filter": more.filter } } : {}) },
      spec: { poolRef: { apiGroup: "ipam.cluster.x-k8s.io", ...pool }, ...(more.clusterName ? { clusterName: more.clusterName } : {}) },
    },
    { fieldManager: FIELD_MANAGER },
  );
}

const ready = (c: IPAddressClaimV1beta2) => c.status?.conditions?.find((x) => x.type === "Ready");

/** Waits until the claim is Ready=True; resolves with its IPAddress's address/prefix. */
export async function boundAddress(client: KubeClient, namespace: string, name: string, timeoutMs = 20_000): Promise<string> {
  await waitFor(async () => ready(await client.get(IPAddressClaimsV1beta2, name, { namespace }))?.status === "True", timeoutMs, `claim ${namespace}/${name} to be Ready`);
  const address = await client.get(IPAddressesV1beta2, name, { namespace });
  return `${address.spec.address}/${address.spec.prefix}`;
}

export async function readyOf(client: KubeClient, namespace: string, name: string) {
  return ready(await client.get(IPAddressClaimsV1beta2, name, { namespace }));
}
