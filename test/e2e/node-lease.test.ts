/**
 * A daemon on a shared store announces its node for a TTL (here the minimum, 2 s) and keeps
 * the announcement alive; other daemons treat a node whose announcement ran out as gone. On
 * both stores (etcd holding blocks, as a new prefix does) it is a Lease object renewed every
 * third of its duration. On each, through a TCP relay the test can cut: the announcement outlives many
 * TTLs and a restart of the store longer than the TTL; when the path is cut for longer than
 * the TTL (the store running on, so the announcement really runs out), the node is gone for
 * the others, and announces itself again once it can.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Leases } from "../../src/kube/resources.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { startEtcd } from "../store/etcd-cluster.ts";
import { attachmentEnv, cleanup, netconf, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";
import { ETCD_NAMESPACE, etcdObjects, kubeStore, leaseHolders } from "./shared-stores.ts";
import { tcpProxy } from "./tcp-proxy.ts";

afterAll(cleanup);

const TTL_MS = 2000;

interface LeaseTarget {
  name: string;
  /** Starts the store and a relay to it; the flags of a daemon that reaches the store through the relay. */
  start(): Promise<{ flags: string[]; relay: Awaited<ReturnType<typeof tcpProxy>> }>;
  /** The node's announcement as the store has it now (an id that changes when it is made anew), or undefined. */
  announcement(node: string): Promise<string | undefined>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

function etcdTarget(): LeaseTarget {
  let etcd: Awaited<ReturnType<typeof startEtcd>>;
  let direct: EtcdClient;
  const prefix = `/lease-${process.pid}/`;
  return {
    name: "etcd",
    async start() {
      etcd = await startEtcd();
      direct = new EtcdClient(etcd.endpoints, {}, 5000);
      const relay = await tcpProxy(Number(new URL(etcd.endpoints[0]!).port));
      return { relay, flags: ["--store", "etcd", "--etcd-endpoints", `http://127.0.0.1:${relay.port}`, "--etcd-prefix", prefix] };
    },
    // A live node's Lease object (a new prefix holds blocks): the same one renewed (its uid), or one made anew.
    announcement: async (node) => {
      const objects = etcdObjects(direct, prefix);
      if (!(await leaseHolders(objects, ETCD_NAMESPACE)).includes(node)) return undefined;
      return (await objects.list(Leases, { namespace: ETCD_NAMESPACE })).items.find((l) => l.spec?.holderIdentity === node)?.metadata.uid ?? undefined;
    },
    stop: () => etcd.kill(0),
    restart: () => etcd.start(0),
  };
}

function kubeTarget(): LeaseTarget {
  const store = kubeStore();
  let scope: string;
  return {
    name: "kubernetes",
    async start() {
      await store.start();
      scope = await store.scope();
      const kube = store.kube();
      const relay = await tcpProxy(Number(new URL(kube.url).port));
      const kubeconfig = join(tempDir(), "kubeconfig");
      writeFileSync(kubeconfig, (await Bun.file(kube.kubeconfigPath).text()).replace(kube.url, `https://127.0.0.1:${relay.port}`));
      return { relay, flags: ["--store", "kubernetes", "--kubeconfig", kubeconfig, "--kube-namespace", scope] };
    },
    // A live node's Lease: the same object renewed (its uid), or one made anew.
    announcement: async (node) => {
      if (!(await store.liveNodes(scope)).includes(node)) return undefined;
      const leases = await store.client().list(Leases, { namespace: scope });
      return leases.items.find((l) => l.spec?.holderIdentity === node)?.metadata.uid ?? undefined;
    },
    stop: () => store.outage(),
    restart: () => store.recover(),
  };
}

for (const target of [etcdTarget(), kubeTarget()]) {
  describe(`the node's announcement on ${target.name}`, () => {
    test("kept alive across TTLs and a store restart; lost for longer than its TTL, made anew", async () => {
      const { flags, relay } = await target.start();
      const dir = tempDir();
      const config = join(dir, "config.json");
      writeFileSync(config, JSON.stringify({ [target.name]: { nodeTTL: TTL_MS / 1000 }, reclaimInterval: 0 }));
      const d = await startDaemon({ dir, args: ["--config", config, "--node", "node-l", ...flags] });
      const add = (id: string) => runPlugin(attachmentEnv("ADD", id), netconf(d.socket, { ranges: [[{ subnet: "10.99.0.0/24" }]] }));
      /** Looks at the announcement for `ms`: it must be there, the same, at every look. */
      const heldFor = async (ms: number, as: string) => {
        for (const until = Date.now() + ms; Date.now() < until; await Bun.sleep(200)) expect(await target.announcement("node-l")).toBe(as);
      };

      const first = await target.announcement("node-l");
      expect(first).toBeDefined();
      await heldFor(2 * TTL_MS, first!); // kept alive: two TTLs

      // The store down for longer than the TTL: the daemon's keep-alive must go on once it is back.
      await target.stop();
      try {
        expect((await add("during-outage")).json?.code).toBe(11);
        await Bun.sleep(TTL_MS + 1000);
      } finally {
        await target.restart();
      }
      await waitFor(async () => (await add("after-restart")).exitCode === 0, 30_000, "ADDs to resume after the store's restart");
      await waitFor(async () => (await target.announcement("node-l")) === first, 10_000, "the announcement to be kept");
      await heldFor(2 * TTL_MS, first!);

      // The path cut for longer than the TTL, the store running on: the announcement runs out there.
      await relay.cut();
      try {
        await waitFor(async () => (await target.announcement("node-l")) === undefined, 10_000, "the announcement to run out");
        expect((await add("during-cut")).json?.code).toBe(11);
      } finally {
        await relay.restore();
      }
      await waitFor(async () => (await target.announcement("node-l")) !== undefined, 10_000, "the daemon to announce itself again");
      const second = (await target.announcement("node-l"))!;
      // On both stores the Lease is the same object, renewed again (uid unchanged) once it can be.
      expect(second).toBe(first!);
      await heldFor(2 * TTL_MS, second);
      expect((await add("after-cut")).exitCode).toBe(0);
    }, 120_000);
  });
}
