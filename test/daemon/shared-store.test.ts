/** Two daemons (in-process services) on one real etcd: node scoping of GC, sticky pods across a shared store. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { IpamService } from "../../src/daemon/ipam-service.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { cleanup } from "../e2e/harness.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(cleanup);

let n = 0;
async function nodes(names: string[], pools = {}): Promise<IpamService[]> {
  const prefix = `/shared-${process.pid}-${n++}/`;
  return Promise.all(names.map((node) => IpamService.start(new EtcdStore(new EtcdClient(etcd.endpoints), prefix, node), { node, pools: compilePools(pools) })));
}
const ranges = [[{ subnet: "10.9.0.0/24" }]];

describe("shared store", () => {
  test("CNI GC on one node never releases another node's allocations", async () => {
    const [a, b] = await nodes(["node-a", "node-b"]);
    await a!.add({ network: "n", containerID: "on-a", ifname: "eth0", ranges });
    await b!.add({ network: "n", containerID: "on-b", ifname: "eth0", ranges });
    expect(await b!.gc({ network: "n", validAttachments: [] })).toHaveLength(1);
    expect(await a!.check({ network: "n", containerID: "on-a", ifname: "eth0" })).toHaveLength(1);
  });

  test("importing more entries than one etcd transaction holds commits them all", async () => {
    const [a] = await nodes(["node-a"]);
    const entries = Array.from({ length: 80 }, (_, i) => ({ ip: `10.7.0.${i + 2}`, containerID: `hl-${i}`, ifname: "eth0" }));
    expect(await a!.importAllocations({ network: "migr", ranges: [[{ subnet: "10.7.0.0/24" }]], entries })).toMatchObject({ imported: 80, unchanged: 0 });
    expect(await a!.importAllocations({ network: "migr", entries })).toMatchObject({ imported: 0, unchanged: 80 });
  });

  test("a sticky pod re-created on another node gets its address back there", async () => {
    const pools = { db: { addresses: ["10.6.0.1-10.6.0.9"], prefix: 24, sticky: "pod", stickyTTL: 60 } };
    const [a, b] = await nodes(["node-a", "node-b"], pools);
    const req = (containerID: string, name = "pg-0") => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name } });
    const [first] = await a!.add(req("on-a"));
    await a!.del({ network: "n", containerID: "on-a", ifname: "eth0" });
    expect((await b!.add(req("on-b")))[0]!.address).toBe(first!.address);
    // Node A still has the old parked binding in memory; nothing it does hands the address out.
    const others = await Promise.all([1, 2, 3].map((i) => a!.add(req(`other-${i}`, `other-${i}`))));
    expect(others.map((o) => o[0]!.address)).not.toContain(first!.address);
  });

  test("a DEL that loses a race with a release and a new owner on another node succeeds, and leaves the new owner alone", async () => {
    /** Node A's store, paused after an attachment lookup while the test lets node B act. */
    class PausingStore extends EtcdStore {
      pause: Promise<void> | undefined;
      override async attachment(...args: Parameters<EtcdStore["attachment"]>) {
        const found = await super.attachment(...args);
        if (this.pause) await this.pause;
        return found;
      }
    }
    const prefix = `/race-${process.pid}-${n++}/`;
    const storeA = new PausingStore(new EtcdClient(etcd.endpoints), prefix, "node-a");
    const a = await IpamService.start(storeA, { node: "node-a", pools: compilePools({}) });
    const b = await IpamService.start(new EtcdStore(new EtcdClient(etcd.endpoints), prefix, "node-b"), { node: "node-b", pools: compilePools({}) });
    const [mine] = await a.add({ network: "n", containerID: "c1", ifname: "eth0", ranges });
    let resume!: () => void;
    storeA.pause = new Promise((r) => (resume = r));
    const deleting = a.del({ network: "n", containerID: "c1", ifname: "eth0" });
    await Bun.sleep(50); // A has read c1's allocation and waits
    await b.releaseAddress(mine!.address, "operator");
    await b.add({ network: "n", containerID: "c2", ifname: "eth0", ranges, requestedIps: [mine!.address] });
    storeA.pause = undefined;
    resume();
    await deleting;
    expect((await b.check({ network: "n", containerID: "c2", ifname: "eth0" })).map((ip) => ip.address)).toEqual([mine!.address]);
    expect((await storeA.holders(mine!.address)).map((r) => r.containerID)).toEqual(["c2"]);
    expect(await storeA.attachment("n", { containerID: "c1", ifname: "eth0" })).toEqual([]);
  });

  test("a sticky pod gets its address back after DEL, through the hold kept in etcd", async () => {
    const [a] = await nodes(["node-a"], { db: { addresses: ["10.8.0.1-10.8.0.9"], prefix: 24, sticky: "pod" } });
    const req = (containerID: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name: "pg-0" } });
    const [first] = await a!.add(req("c1"));
    await a!.del({ network: "n", containerID: "c1", ifname: "eth0" });
    expect((await a!.add(req("c2")))[0]!.address).toBe(first!.address);
  });
});
