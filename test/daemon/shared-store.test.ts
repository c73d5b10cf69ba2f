/** Two daemons (in-process services) on one real etcd: node scoping of GC, sticky pods across a shared store. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Engine } from "../../src/engine/engine.ts";
import { ErrorCode, IpamError } from "../../src/errors.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import type { Change } from "../../src/store/store.ts";
import { cleanup } from "../e2e/harness.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(cleanup);

/** Node A's store, paused once right after an attachment lookup while the test lets node B act. */
class PausingStore extends EtcdStore {
  private pause: { read: () => void; gate: Promise<void> } | undefined;

  override async attachment(...args: Parameters<EtcdStore["attachment"]>) {
    const found = await super.attachment(...args);
    const pause = this.pause;
    this.pause = undefined;
    if (pause) {
      pause.read();
      await pause.gate;
    }
    return found;
  }

  /**
   * Starts op, resolves once it has read an attachment and waits there; resume() lets it
   * finish. Throws if op ends without reaching the pause: the race would never be set up.
   */
  async pausedIn<T>(op: () => Promise<T>): Promise<{ resume: () => Promise<T> }> {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const read = new Promise<void>((resolve) => (this.pause = { read: resolve, gate }));
    const running = op();
    const reached = await Promise.race([read.then(() => true), running.then(() => false, () => false)]);
    if (!reached) {
      this.pause = undefined;
      throw new Error(`the operation ended (${await running.then(() => "resolved", (err) => `rejected: ${err}`)}) without reading an attachment: the race was never set up`);
    }
    return { resume: () => (open(), running) };
  }
}

/** A real client whose next write transaction applies but whose answer is lost, as in a timeout. */
class LossyClient extends EtcdClient {
  loseNextWrite = false;
  override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
    const result = await super.txn(...args);
    if (this.loseNextWrite && args[1].some((op) => !("range" in op))) {
      this.loseNextWrite = false;
      throw new IpamError(ErrorCode.TryAgainLater, "etcd is not available: the answer was lost");
    }
    return result;
  }
}

let n = 0;
async function nodes(names: string[], pools = {}): Promise<Engine[]> {
  const prefix = `/shared-${process.pid}-${n++}/`;
  return Promise.all(names.map((node) => Engine.start(new EtcdStore(new EtcdClient(etcd.endpoints), prefix, node), { node, pools: compilePools(pools) })));
}
const ranges = [[{ subnet: "10.9.0.0/24" }]];

describe("shared store", () => {
  test("CNI GC on one node never releases another node's allocations", async () => {
    const [a, b] = await nodes(["node-a", "node-b"]);
    await a!.add({ network: "n", containerID: "on-a", ifname: "eth0", ranges });
    await b!.add({ network: "n", containerID: "on-b", ifname: "eth0", ranges });
    expect(await b!.gc({ network: "n", validAttachments: [] })).toHaveLength(1);
    expect(await a!.check({ network: "n", containerID: "on-a", ifname: "eth0" })).toHaveLength(1);
  }, 30_000);

  test("importing more entries than one etcd transaction holds commits them all", async () => {
    const [a] = await nodes(["node-a"]);
    const entries = Array.from({ length: 80 }, (_, i) => ({ ip: `10.7.0.${i + 2}`, containerID: `hl-${i}`, ifname: "eth0" }));
    expect(await a!.importAllocations({ network: "migr", ranges: [[{ subnet: "10.7.0.0/24" }]], entries })).toMatchObject({ imported: 80, unchanged: 0 });
    expect(await a!.importAllocations({ network: "migr", entries })).toMatchObject({ imported: 0, unchanged: 80 });
  }, 30_000);

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
  }, 30_000);

  test("a DEL that loses a race with a release and a new owner on another node succeeds, and leaves the new owner alone", async () => {
    /** Node A's store, paused after an attachment lookup while the test lets node B act. */
    const prefix = `/race-${process.pid}-${n++}/`;
    const storeA = new PausingStore(new EtcdClient(etcd.endpoints), prefix, "node-a");
    const a = await Engine.start(storeA, { node: "node-a", pools: compilePools({}) });
    const b = await Engine.start(new EtcdStore(new EtcdClient(etcd.endpoints), prefix, "node-b"), { node: "node-b", pools: compilePools({}) });
    const [mine] = await a.add({ network: "n", containerID: "c1", ifname: "eth0", ranges });
    const deleting = await storeA.pausedIn(() => a.del({ network: "n", containerID: "c1", ifname: "eth0" }));
    await b.releaseAddress(mine!.address, "operator");
    await b.add({ network: "n", containerID: "c2", ifname: "eth0", ranges, requestedIps: [mine!.address] });
    await deleting.resume();
    expect((await b.check({ network: "n", containerID: "c2", ifname: "eth0" })).map((ip) => ip.address)).toEqual([mine!.address]);
    expect((await storeA.holders(mine!.address)).map((r) => r.containerID)).toEqual(["c2"]);
    expect(await storeA.attachment("n", { containerID: "c1", ifname: "eth0" })).toEqual([]);
  }, 30_000);

  test("a sticky pod whose DEL raced an operator's release on another node can come back", async () => {
    const pools = compilePools({ db: { addresses: ["10.8.1.1-10.8.1.9"], prefix: 24, sticky: "pod" } });
    const prefix = `/sticky-race-${process.pid}-${n++}/`;
    const storeA = new PausingStore(new EtcdClient(etcd.endpoints), prefix, "node-a");
    const a = await Engine.start(storeA, { node: "node-a", pools });
    const b = await Engine.start(new EtcdStore(new EtcdClient(etcd.endpoints), prefix, "node-b"), { node: "node-b", pools });
    const req = (containerID: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name: "pg-0" } });
    const [first] = await a.add(req("c1"));
    const deleting = await storeA.pausedIn(() => a.del({ network: "n", containerID: "c1", ifname: "eth0" }));
    await b.releaseAddress(first!.address, "operator");
    await deleting.resume();
    // The operator's release ended the binding (the address is no longer the pod's): the next one.
    expect(first!.address).toBe("10.8.1.1");
    expect((await a.add(req("c2"))).map((ip) => ip.address)).toEqual(["10.8.1.2"]);
    expect(await a.store.bindings()).toEqual([expect.objectContaining({ pod: expect.stringContaining("pg-0"), ip: "10.8.1.2", releasedAt: null })]);
  }, 30_000);

  test("a release whose commit applied but whose answer was lost keeps its cooldown: the address comes back", async () => {
    const clock = { now: 1_000_000 };
    const pools = compilePools({ v4: { addresses: ["10.5.1.1-10.5.1.2"], prefix: 24, releaseCooldown: 1 } });
    const client = new LossyClient(etcd.endpoints);
    const a = await Engine.start(new EtcdStore(client, `/lossy-${process.pid}-${n++}/`, "node-a"), { node: "node-a", pools, now: () => clock.now });
    const req = (containerID: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["v4"] });
    const [x] = await a.add(req("c1"));
    client.loseNextWrite = true;
    await expect(a.del(req("c1"))).rejects.toMatchObject({ code: 11 });
    await a.del(req("c1")); // the runtime retries: nothing left to release
    clock.now += 10_000;
    const later = [await a.add(req("n1")), await a.add(req("n2"))].map((ips) => ips[0]!.address);
    expect(later).toContain(x!.address);
  }, 30_000);

  test("an ADD ending a pod's run-out binding while that pod's own ADD reads it leaves the pod able to come back", async () => {
    /** Orders the race: pg-0's ADD reads its binding, then the other ADD's unbind commits, then pg-0's ADD goes on. */
    class OrderingStore extends EtcdStore {
      armed = false;
      private read!: () => void;
      private readonly hasRead = new Promise<void>((resolve) => (this.read = resolve));
      private unbound!: () => void;
      private readonly hasUnbound = new Promise<void>((resolve) => (this.unbound = resolve));
      override async binding(space: string, pod: string) {
        const found = await super.binding(space, pod);
        if (this.armed && pod.endsWith("/pg-0")) {
          this.armed = false;
          this.read();
          await this.hasUnbound;
        }
        return found;
      }
      override async commit(changes: Change[]) {
        // The expiry's commit: the parked address's hold ends with the pod's binding.
        const unbind = changes.some((c) => c.op === "unbind") && !changes.some((c) => c.op === "allocate");
        if (unbind) await this.hasRead;
        await super.commit(changes);
        if (unbind) this.unbound();
      }
    }
    const clock = { now: 1_000_000 };
    const pools = compilePools({ db: { addresses: ["10.8.2.1-10.8.2.9"], prefix: 24, sticky: "pod", stickyTTL: 1 } });
    const store = new OrderingStore(new EtcdClient(etcd.endpoints), `/expiry-race-${process.pid}-${n++}/`, "node-a");
    const a = await Engine.start(store, { node: "node-a", pools, now: () => clock.now });
    const req = (containerID: string, name: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name } });
    await a.add(req("c1", "pg-0"));
    await a.del({ network: "n", containerID: "c1", ifname: "eth0" });
    clock.now += 5_000; // pg-0's parking has run out
    store.armed = true;
    const [other, back] = await Promise.all([a.add(req("q1", "other")), a.add(req("c2", "pg-0"))]);
    expect(other[0]!.address).not.toBe(back[0]!.address);
    await a.del({ network: "n", containerID: "c2", ifname: "eth0" });
    // Its binding parked the address again at this DEL: the pod gets it back.
    expect((await a.add(req("c3", "pg-0"))).map((ip) => ip.address)).toEqual([back[0]!.address]);
  }, 30_000);

  test("an operator's release on another node ends a sticky pod's binding there too: the pod comes back", async () => {
    const [a, b] = await nodes(["node-a", "node-b"], { db: { addresses: ["10.8.3.1-10.8.3.9"], prefix: 24, sticky: "pod" } });
    const req = (containerID: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name: "pg-0" } });
    const [first] = await a!.add(req("c1"));
    expect((await b!.releaseAddress(first!.address, "operator")).released).toHaveLength(1);
    await a!.del(req("c1"));
    // Its binding ended with the release, so the pod gets the next address, bound anew.
    expect(first!.address).toBe("10.8.3.1");
    expect((await a!.add(req("c2"))).map((ip) => ip.address)).toEqual(["10.8.3.2"]);
    expect((await a!.store.bindings()).map((b) => [b.ip, b.releasedAt])).toEqual([["10.8.3.2", null]]);
  }, 30_000);

  test("a sticky pod gets its address back after DEL, through the hold kept in etcd", async () => {
    const [a] = await nodes(["node-a"], { db: { addresses: ["10.8.0.1-10.8.0.9"], prefix: 24, sticky: "pod" } });
    const req = (containerID: string) => ({ network: "n", containerID, ifname: "eth0", pools: ["db"], pod: { namespace: "x", name: "pg-0" } });
    const [first] = await a!.add(req("c1"));
    await a!.del({ network: "n", containerID: "c1", ifname: "eth0" });
    expect((await a!.add(req("c2")))[0]!.address).toBe(first!.address);
  }, 30_000);
});
