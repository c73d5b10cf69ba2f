/**
 * Which layout `serve --store etcd` uses on a prefix (src/daemon/open-store.ts): a new prefix
 * gets blocks, named once however many daemons start on it together; a prefix an earlier
 * version filled (a key per address) keeps its layout and its data.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { etcdLayout } from "../../src/store/etcd-layouts.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { record } from "../store/contract.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";
import { attachmentEnv, cleanup, netconf, runPlugin, startDaemon, waitFor } from "./harness.ts";

let etcd: EtcdCluster;
let client: EtcdClient;
beforeAll(async () => {
  etcd = await startEtcd();
  client = new EtcdClient(etcd.endpoints, {}, 3000);
}, 30_000);
afterAll(cleanup);

let n = 0;
const fresh = () => `/layouts-${process.pid}-${n++}/`;

describe("the etcd layout of a prefix", () => {
  test("a new prefix gets blocks, and daemons starting on it together all agree, whatever the order of their reads", async () => {
    for (let round = 0; round < 10; round++) {
      const prefix = fresh();
      const layouts = await Promise.all(Array.from({ length: 6 }, () => etcdLayout(new EtcdClient(etcd.endpoints), prefix)));
      expect(layouts).toEqual(Array(6).fill("blocks"));
      expect((await client.range(`${prefix}layout`))[0]?.value).toBe("blocks");
    }
  });

  test("a prefix with keys of the per-address layout keeps it: with its layout key, or with none (the first layout's)", async () => {
    const marked = fresh();
    await client.put(`${marked}layout`, "5");
    expect(await etcdLayout(client, marked)).toBe("per-address");
    const unmarked = fresh();
    await client.put(`${unmarked}a/net1/10.0.0.5`, JSON.stringify(record("10.0.0.5", "old")));
    expect(await etcdLayout(client, unmarked)).toBe("per-address");
    expect((await client.range(`${unmarked}layout`)).length).toBe(0);
  });

  test("a prefix of blocks whose layout key an earlier version rewrote is refused, saying what to do", async () => {
    const prefix = fresh();
    expect(await etcdLayout(client, prefix)).toBe("blocks");
    await client.put(`${prefix}ipamblocks/ipamd/net1-10.0.0.0-26`, "{}");
    // An earlier version, knowing only the per-address layout, marks the prefix as its own.
    await client.put(`${prefix}layout`, "5");
    await expect(etcdLayout(client, prefix)).rejects.toThrow(`holds blocks, but its layout key says "5": a daemon of an earlier version`);
  });

  test("a daemon on a prefix an earlier version filled serves its allocations as they are", async () => {
    const prefix = fresh();
    const earlier = new EtcdStore(new EtcdClient(etcd.endpoints), prefix, "node-a");
    await earlier.prepare();
    await earlier.commit([{ op: "allocate", record: record("10.0.0.5", "before-upgrade", { network: "testnet", node: "node-a", rangeSet: "10.0.0.0/24[10.0.0.1-10.0.0.254 gw 10.0.0.1]" }) }]);
    const daemon = await startDaemon({ args: ["--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", prefix, "--node", "node-a"] });
    // Its start line (read from its stderr as it comes) names the layout.
    await waitFor(() => daemon.stderr().includes('"ipamd serving"'), 5000, "the daemon's start line");
    expect(daemon.stderr()).toContain('"layout":"per-address"');
    const conf = netconf(daemon.socket, { ranges: [[{ subnet: "10.0.0.0/24", gateway: "10.0.0.1" }]] });
    // The attachment's address is the one stored before; a new one gets another.
    const again = await runPlugin(attachmentEnv("ADD", "before-upgrade"), conf);
    expect(again.json?.ips?.[0]?.address).toBe("10.0.0.5/24");
    const other = await runPlugin(attachmentEnv("ADD", "after-upgrade"), conf);
    expect(other.exitCode).toBe(0);
    expect(other.json.ips[0].address).not.toBe("10.0.0.5/24");
    expect((await client.rangePrefix(`${prefix}a/`)).length).toBe(2);
  });
});
