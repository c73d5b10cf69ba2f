/**
 * A daemon on the etcd store announces its node under a lease (etcd.nodeTTL, here the
 * minimum 2 s) and keeps it alive; other daemons treat a node whose key has expired as gone.
 * On a real etcd member: the lease outlives many TTLs and an etcd restart longer than the
 * TTL; when the path to etcd is cut for longer than the TTL (etcd running on, so the lease
 * really expires), the daemon grants a new lease and announces itself again once it can.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EtcdClient, type KeyValue } from "../../src/store/etcd-client.ts";
import { startEtcd } from "../store/etcd-cluster.ts";
import { attachmentEnv, cleanup, netconf, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";
import { tcpProxy } from "./tcp-proxy.ts";

afterAll(cleanup);

const TTL_MS = 2000;

describe("the node lease", () => {
  test("kept alive across TTLs and an etcd restart; lost for longer than its TTL, granted anew", async () => {
    const etcd = await startEtcd();
    const proxy = await tcpProxy(Number(new URL(etcd.endpoints[0]!).port));
    const prefix = `/lease-${process.pid}/`;
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ etcd: { nodeTTL: TTL_MS / 1000 }, reclaimInterval: 0 }));
    const d = await startDaemon({ dir, args: ["--config", config, "--node", "node-l", "--store", "etcd", "--etcd-endpoints", `http://127.0.0.1:${proxy.port}`, "--etcd-prefix", prefix] });
    const direct = new EtcdClient(etcd.endpoints, {}, 5000);
    const nodeKey = async (): Promise<KeyValue | undefined> => (await direct.range(`${prefix}node/node-l`))[0];
    const add = (id: string) => runPlugin(attachmentEnv("ADD", id), netconf(d.socket, { ranges: [[{ subnet: "10.99.0.0/24" }]] }));
    /** Watches the node key for `ms`: it must be there, on `lease`, at every look. */
    const heldFor = async (ms: number, lease: string) => {
      for (const until = Date.now() + ms; Date.now() < until; await Bun.sleep(200)) expect((await nodeKey())?.lease).toBe(lease);
    };

    const first = (await nodeKey())?.lease;
    expect(first).toBeDefined();
    await heldFor(2 * TTL_MS, first!); // kept alive: two TTLs on one lease

    // etcd down for longer than the TTL: etcd renews its leases when it elects a leader
    // again, and the daemon's keep-alive must go on from there.
    await etcd.kill(0);
    try {
      expect((await add("during-outage")).json?.code).toBe(11);
      await Bun.sleep(TTL_MS + 1000); // the outage itself: longer than the TTL
    } finally {
      await etcd.start(0);
    }
    await waitFor(async () => (await add("after-restart")).exitCode === 0, 20_000, "ADDs to resume after the etcd restart");
    await heldFor(2 * TTL_MS, first!);

    // The path to etcd cut for longer than the TTL, etcd running on: the lease expires there.
    await proxy.cut();
    try {
      await waitFor(async () => (await nodeKey()) === undefined, 10_000, "the node key to expire with its lease");
      expect((await add("during-cut")).json?.code).toBe(11);
    } finally {
      await proxy.restore();
    }
    await waitFor(async () => (await nodeKey()) !== undefined, 10_000, "the daemon to announce itself again");
    const second = (await nodeKey())!.lease;
    expect(second).not.toBe(first);
    await heldFor(2 * TTL_MS, second!);
    expect((await add("after-cut")).exitCode).toBe(0);
  }, 120_000);
});
