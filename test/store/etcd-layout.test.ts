/**
 * The etcd layout's promises on a real etcd: a node's periodic work and the admin questions
 * read about as many keys as their answers hold, however many nodes share the store; and a
 * store written by an older layout is carried over whole.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { addressPart, part } from "../../src/store/etcd/layout.ts";
import type { AllocationRecord } from "../../src/store/store.ts";
import { cleanup } from "../e2e/harness.ts";
import { record } from "./contract.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(cleanup);

const PER_NODE = 20;

/** `nodes` simulated nodes of PER_NODE pods each, every pod with one address and a netns. */
async function fill(store: EtcdStore, nodes: number): Promise<void> {
  const records: AllocationRecord[] = [];
  for (let n = 0; n < nodes; n++) {
    for (let i = 0; i < PER_NODE; i++) {
      const k = n * PER_NODE + i;
      records.push(record(`10.${100 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`, `n${n}-c${i}`, { node: `node-${n}`, podNamespace: `ns-${n}`, podName: `pod-${i}` }));
    }
  }
  const slice = store.commitCapacity;
  const commits: Promise<void>[] = [];
  for (let i = 0; i < records.length; i += slice) commits.push(store.commit(records.slice(i, i + slice).map((r) => ({ op: "allocate" as const, record: r }))));
  await Promise.all(commits);
}

/** Keys etcd answered while `run` ran, and its answer. */
async function cost<T>(client: EtcdClient, run: () => Promise<T>): Promise<{ keys: number; answer: T }> {
  const before = client.keysRead;
  const answer = await run();
  return { keys: client.keysRead - before, answer };
}

describe("etcd reads per question", () => {
  test("one node's sweep, GC list and admin questions read what their answers hold, at 1, 10 and 100 nodes alike", async () => {
    const sweepKeys: number[] = [];
    for (const nodes of [1, 10, 100]) {
      const client = new EtcdClient(etcd.endpoints);
      const store = new EtcdStore(client, `/reads-${process.pid}-${nodes}/`, "node-0");
      await fill(store, nodes);
      const sweep = await cost(client, () => store.netnsAllocations("node-0"));
      expect(sweep.answer).toHaveLength(PER_NODE);
      // Its n/ keys, then the records they point to: two keys per allocation.
      expect(sweep.keys).toBe(2 * PER_NODE);
      sweepKeys.push(sweep.keys);
      const gc = await cost(client, () => store.attachments("net1", "node-0"));
      expect({ answer: gc.answer.length, keys: gc.keys }).toEqual({ answer: PER_NODE, keys: PER_NODE });
      const holder = await cost(client, () => store.holders("10.100.0.3"));
      expect({ answer: holder.answer.map((r) => r.containerID), keys: holder.keys }).toEqual({ answer: ["n0-c3"], keys: 2 });
      const byNode = await cost(client, () => store.allocations({ node: "node-0" }));
      expect({ answer: byNode.answer.length, keys: byNode.keys }).toEqual({ answer: PER_NODE, keys: 2 * PER_NODE });
      const byPod = await cost(client, () => store.allocations({ podNamespace: "ns-0", podName: "pod-5" }));
      expect({ answer: byPod.answer.map((r) => r.ip), keys: byPod.keys }).toEqual({ answer: ["10.100.0.5"], keys: 2 });
      const byContainer = await cost(client, () => store.allocations({ containerID: "n0-c7" }));
      expect({ answer: byContainer.answer.length, keys: byContainer.keys }).toEqual({ answer: 1, keys: 1 });
      const history = await cost(client, () => store.history({ ip: "10.100.0.3" }));
      expect({ answer: history.answer.map((e) => e.kind), keys: history.keys }).toEqual({ answer: ["allocated"], keys: 2 });
      const podHistory = await cost(client, () => store.history({ podNamespace: "ns-0", podName: "pod-4" }));
      expect({ answer: podHistory.answer.length, keys: podHistory.keys }).toEqual({ answer: 1, keys: 2 });
      // A page of everything reads a page, not the store.
      const page = await cost(client, () => store.allocations({ limit: 50 }));
      expect({ answer: page.answer.length, keys: page.keys <= 500 }).toEqual({ answer: Math.min(50, nodes * PER_NODE), keys: true });
    }
    expect(new Set(sweepKeys).size).toBe(1);
  }, 120_000);
});

describe("older etcd layouts", () => {
  test("a store written by the first layout is migrated at start: allocations, holds, cursors, subnets, blocks and history", async () => {
    const client = new EtcdClient(etcd.endpoints);
    const p = `/v1-${process.pid}/`;
    const live = record("10.0.0.2", "c1", { podNamespace: "prod", podName: "api-0" });
    const put = (key: string, value: string) => client.put(p + key, value);
    // Exactly as ipamd 0.1.0's etcd store wrote them.
    // 0.1.0's records named an inline range set in `pool` and had no rangeSet.
    const { rangeSet: _none, ...old } = { ...live, pool: `net1|${live.rangeSet}` };
    await put("a/net1/10.0.0.2", JSON.stringify(old));
    await put("att/net1/c1/eth0/net1/10.0.0.2", JSON.stringify(old));
    await put("a/net1/10.0.0.3", JSON.stringify({ held: "cooling", space: "net1", family: 4, ip: "10.0.0.3" }));
    await put("cool/net1/10.0.0.3", JSON.stringify({ space: "net1", family: 4, ip: "10.0.0.3", until: 5 }));
    await put("a/@ipv4/10.9.0.7", JSON.stringify({ held: "sticky", space: "@ipv4", family: 4, ip: "10.9.0.7" }));
    await put("bind/@ipv4/web:default/web-0", JSON.stringify({ space: "@ipv4", pod: "web:default/web-0", family: 4, ip: "10.9.0.7", releasedAt: 9 }));
    await put("cur/net1|10.0.0.0/24[10.0.0.1-10.0.0.254 gw 10.0.0.1]", "10.0.0.3");
    await put("subnet/pods/10.244.1.0/24", "node-a");
    await put("block/net1/10.0.0.0/26", "node-a");
    await put("ev/001700000000000-node-a-0000000001", JSON.stringify({ id: 1700000000000001, at: 1_700_000_000_000, kind: "allocated", network: "net1", ip: "10.0.0.2", containerID: "c1", ifname: "eth0", podNamespace: "prod", podName: "api-0", podUid: null, cause: "cni add" }));

    const store = new EtcdStore(client, p, "node-a");
    await store.prepare();
    const taken: string[] = [];
    await store.forEachTaken((space, _family, ip, held) => taken.push(`${space} ${ip} ${held ? "held" : "allocated"}`));
    expect(taken.sort()).toEqual(["@ipv4 10.9.0.7 held", "net1 10.0.0.2 allocated", "net1 10.0.0.3 held"]);
    expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([live]);
    expect((await store.allocations({ podNamespace: "prod", podName: "api-0" })).map((r) => r.ip)).toEqual(["10.0.0.2"]);
    expect((await store.holders("10.0.0.2")).map((r) => r.containerID)).toEqual(["c1"]);
    expect(await store.cursors()).toEqual(new Map([["net1|10.0.0.0/24[10.0.0.1-10.0.0.254 gw 10.0.0.1]", "10.0.0.3"]]));
    expect((await store.holds()).map((h) => `${h.kind} ${h.ip} ${h.until ?? h.pod}`).sort()).toEqual(["cooling 10.0.0.3 5", "sticky 10.9.0.7 web:default/web-0"]);
    expect((await store.bindings()).map((b) => b.pod)).toEqual(["web:default/web-0"]);
    expect(await store.nodeSubnets("pods")).toEqual([{ node: "node-a", subnet: "10.244.1.0/24" }]);
    expect(await store.blocks()).toEqual([{ space: "net1", cidr: "10.0.0.0/26", node: "node-a" }]);
    expect((await store.history({ ip: "10.0.0.2" })).map((e) => `${e.kind} ${e.containerID}`)).toEqual(["allocated c1"]);
    // Nothing of the first layout is left, and a second start changes nothing.
    const keys = (await client.rangePrefix(p, { keysOnly: true })).map((kv) => kv.key.slice(p.length)).sort();
    expect(keys.filter((k) => /^(a|att|cool)\/.*[.:][0-9a-f]*$/.test(k) || k.includes("/10.244.1.0/24") || k.includes("/10.0.0.0/26"))).toEqual([]);
    await store.prepare();
    expect((await client.rangePrefix(p, { keysOnly: true })).map((kv) => kv.key.slice(p.length)).sort()).toEqual(keys);
  }, 30_000);

  for (const from of ["2", "3", "4"] as const) {
    test(`a store of layout ${from} gets the keys later layouts added, and loses the ones they dropped, once`, async () => {
      const client = new EtcdClient(etcd.endpoints);
      const p = `/v${from}-${process.pid}/`;
      const store = new EtcdStore(client, p, "node-a");
      await store.prepare();
      const named = { ...record("10.0.0.9", "c8", { podNamespace: "batch", podName: "job-1" }), space: "@ipv4", pool: "v4", rangeSet: null };
      const records = [record("10.0.0.7", "c6", { podNamespace: "batch", podName: null }), record("10.0.0.8", "c7", { podNamespace: "batch", podName: "job-0" }), named];
      await store.commit(records.map((r) => ({ op: "allocate", record: r })));
      // As a daemon of that layout left them: an ip/ key per allocation and no sp/ keys; before
      // 4, no pod/ key without a pod name; before 3, no nsp/ keys.
      const missing = [
        ...(from === "4" ? [] : await client.rangePrefix(`${p}pod/batch//`, { keysOnly: true })),
        ...(from === "2" ? await client.rangePrefix(`${p}nsp/`, { keysOnly: true }) : []),
        ...(await client.rangePrefix(`${p}sp/`, { keysOnly: true })),
      ].map((kv) => kv.key);
      expect(missing).toHaveLength({ "2": 4, "3": 3, "4": 2 }[from]);
      const holderKeys = records.map((r) => `${p}ip/${addressPart(r.ip)}/${part(r.space)}`);
      await client.txn([], [...missing.map((key) => ({ delete: { key } })), ...holderKeys.map((key) => ({ put: { key, value: "" } })), { put: { key: `${p}layout`, value: from } }]);

      const upgraded = new EtcdStore(client, p, "node-a");
      await upgraded.prepare();
      expect((await upgraded.allocations({ podNamespace: "batch" })).map((r) => r.ip)).toEqual(["10.0.0.9", "10.0.0.7", "10.0.0.8"]);
      expect(Object.fromEntries(await upgraded.namespaceUse("v4"))).toEqual({ batch: 1 });
      // Who holds each address is found in its space, without the ip/ keys, which are gone.
      for (const r of records) expect((await upgraded.holders(r.ip)).map((h) => h.containerID)).toEqual([r.containerID]);
      expect(await client.rangePrefix(`${p}ip/`, { keysOnly: true })).toEqual([]);
      expect((await client.range(`${p}layout`))[0]?.value).toBe("5");
      const keys = (await client.rangePrefix(p, { keysOnly: true })).map((kv) => kv.key).sort();
      await upgraded.prepare();
      expect((await client.rangePrefix(p, { keysOnly: true })).map((kv) => kv.key).sort()).toEqual(keys);
    }, 30_000);
  }
});
