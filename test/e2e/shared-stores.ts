/**
 * The shared stores the cluster end-to-end tests run on, behind one face so each test is
 * written once and run on both: a real 3-member etcd cluster with TLS, and a real
 * kube-apiserver with ipamd's CRDs. Each gives a fresh scope per test (an etcd prefix, a
 * namespace), the serve flags of a daemon on it, the ground truth read straight from the
 * store, and an outage (quorum lost, the API server stopped) with its recovery.
 */
import type { KubeClient } from "../../src/kube/client.ts";
import { IPAMBlocks, Leases, Namespaces } from "../../src/kube/resources.ts";
import type { IPAMBlock } from "../../src/kube/schemas/store.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { ETCD_NAMESPACE, EtcdObjects } from "../../src/store/etcd-objects.ts";
export { ETCD_NAMESPACE };
import type { ObjectClient } from "../../src/store/kube/api.ts";
import { NODE_LEASE_LABEL } from "../../src/store/kube/names.ts";
import { allocationOf } from "../../src/store/kube/stored.ts";
import type { AllocationRecord, Block } from "../../src/store/store.ts";
import type { KubeApiserver } from "../kube/apiserver.ts";
import { installCrds, STORE_CRDS, startWithAdmin, uniqueName } from "../kube/helpers.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Daemon, netconf, startDaemon, tempDir, waitFor } from "./harness.ts";

export interface SharedStore {
  readonly name: "etcd" | "kubernetes";
  /** The daemon config's section for this store (blockPrefixV4, nodeTTL). */
  readonly section: "etcd" | "kubernetes";
  start(): Promise<void>;
  /** A fresh, empty place for one test's daemons. */
  scope(): Promise<string>;
  /** `serve` flags of a daemon on the scope. */
  flags(scope: string): string[];
  /** Every allocation the store holds: the ground truth for "handed out exactly once". */
  allocations(scope: string): Promise<AllocationRecord[]>;
  blocks(scope: string): Promise<Block[]>;
  /** Nodes the store counts as alive. */
  liveNodes(scope: string): Promise<string[]>;
  /** Makes the store unable to persist anything (quorum lost; the API server stopped). */
  outage(): Promise<void>;
  recover(): Promise<void>;
}

export function etcdStore(members = 3): SharedStore & { etcd: () => EtcdCluster; client: () => EtcdClient; flags(scope: string, endpoints?: string[]): string[] } {
  let etcd: EtcdCluster;
  let client: EtcdClient;
  let n = 0;
  const objects = (prefix: string) => etcdObjects(client, prefix);
  return {
    name: "etcd",
    section: "etcd",
    etcd: () => etcd,
    client: () => client,
    async start() {
      etcd = await startEtcd({ members, tls: true });
      const c = etcd.certs!;
      client = new EtcdClient(etcd.endpoints, { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() }, 3000);
    },
    async scope() {
      return `/ipamd-${process.pid}-${n++}/`;
    },
    /** endpoints: the members in the order the daemon is given them (it talks to the first). */
    flags(prefix: string, endpoints: string[] = etcd.endpoints) {
      const c = etcd.certs!;
      return ["--store", "etcd", "--etcd-endpoints", endpoints.join(","), "--etcd-cacert", c.ca, "--etcd-cert", c.clientCert, "--etcd-key", c.clientKey, "--etcd-prefix", prefix];
    },
    // A new prefix holds blocks (src/daemon/open-store.ts), kept as the Kubernetes API keeps them.
    allocations: (prefix) => blockAllocations(objects(prefix), ETCD_NAMESPACE),
    blocks: (prefix) => claimedBlocks(objects(prefix), ETCD_NAMESPACE),
    liveNodes: (prefix) => leaseHolders(objects(prefix), ETCD_NAMESPACE),
    async outage() {
      await etcd.kill(2);
      await etcd.kill(1);
    },
    async recover() {
      await etcd.start(1);
      await etcd.start(2);
    },
  };
}

/** options.fsync: the API server's etcd syncs its writes to disk, as in production (benchmarks). */
/** The block store's objects under an etcd prefix, read as a daemon on it reads them. */
export const etcdObjects = (client: EtcdClient, prefix: string): EtcdObjects => new EtcdObjects(client, prefix, "etcd");

/** The blocks of a namespace once no commit spanning blocks is half-way (the daemons tidy within a moment). */
async function settled(client: ObjectClient, namespace: string): Promise<IPAMBlock[]> {
  let items: IPAMBlock[] = [];
  await waitFor(async () => {
    items = (await client.list(IPAMBlocks, { namespace })).items;
    return items.every((b) => !b.spec.pending && !b.spec.commits);
  }, 10_000, "every pending change in the store to be settled");
  return items;
}

/** Every allocation the blocks hold: the ground truth of the block store, on either object client. */
export async function blockAllocations(client: ObjectClient, namespace: string): Promise<AllocationRecord[]> {
  return (await settled(client, namespace)).flatMap((b) => Object.entries(b.spec.allocations ?? {}).map(([ip, a]) => allocationOf(b.spec.space, ip, a)));
}

export async function claimedBlocks(client: ObjectClient, namespace: string): Promise<Block[]> {
  return (await client.list(IPAMBlocks, { namespace })).items.filter((b) => b.spec.node !== "").map((b) => ({ space: b.spec.space, cidr: b.spec.cidr, node: b.spec.node }));
}

export async function leaseHolders(client: ObjectClient, namespace: string): Promise<string[]> {
  const leases = (await client.list(Leases, { namespace, labelSelector: `${NODE_LEASE_LABEL}=true` })).items;
  return leases.flatMap((l) => (Date.parse(l.spec?.renewTime ?? "") + (l.spec?.leaseDurationSeconds ?? 0) * 1000 > Date.now() ? [l.spec!.holderIdentity!] : []));
}

export function kubeStore(options: { fsync?: boolean } = {}): SharedStore & { kube: () => KubeApiserver; client: () => KubeClient } {
  let kube: KubeApiserver;
  let client: KubeClient;
  return {
    name: "kubernetes",
    section: "kubernetes",
    kube: () => kube,
    client: () => client,
    async start() {
      ({ kube, client } = await startWithAdmin({ fsync: options.fsync }));
      await installCrds(client, STORE_CRDS);
    },
    async scope() {
      const namespace = uniqueName("ipamd");
      await client.create(Namespaces, { metadata: { name: namespace } });
      return namespace;
    },
    flags(namespace) {
      return ["--store", "kubernetes", "--kubeconfig", kube.kubeconfigPath, "--kube-namespace", namespace];
    },
    allocations: (namespace) => blockAllocations(client, namespace),
    blocks: (namespace) => claimedBlocks(client, namespace),
    liveNodes: (namespace) => leaseHolders(client, namespace),
    // Killed, not stopped: requests in flight are cut wherever they are.
    outage: () => kube.stopApiserver("SIGKILL"),
    recover: () => kube.startApiserver(),
  };
}

/** Daemons of these node names on a scope of the store, each with its own config and local files. */
export async function daemons(store: SharedStore, names: string[], scope: string, extra: Record<string, unknown> = {}, section: Record<string, unknown> = { blockPrefixV4: 28, nodeTTL: 5 }): Promise<Daemon[]> {
  return Promise.all(
    names.map(async (node) => {
      const dir = tempDir();
      const config = join(dir, "config.json");
      writeFileSync(config, JSON.stringify({ [store.section]: section, reclaimInterval: 0, ...extra }));
      return startDaemon({ dir, args: ["--config", config, "--node", node, ...store.flags(scope)] });
    }),
  );
}

export const conf = (d: Daemon, subnet = "10.95.0.0/26") => netconf(d.socket, { ranges: [[{ subnet }]] });
