import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { ConflictError } from "../../src/store/store.ts";
import { cleanup } from "../e2e/harness.ts";
import { record, storeContract } from "./contract.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(cleanup);

let n = 0;
const client = () => new EtcdClient(etcd.endpoints);

storeContract("etcd", {
  async open() {
    return new EtcdStore(client(), `/contract-${process.pid}-${n++}/`);
  },
  async reopen(store) {
    await store.close();
    return new EtcdStore(client(), (store as EtcdStore).prefix);
  },
});

describe("etcd specifics", () => {
  test("two daemons racing for one address: exactly one wins, the other gets a ConflictError naming it", async () => {
    const prefix = `/race-${process.pid}/`;
    const a = new EtcdStore(client(), prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const results = await Promise.allSettled([
      a.commit([{ op: "allocate", record: record("10.0.0.9", "from-a") }]),
      b.commit([{ op: "allocate", record: record("10.0.0.9", "from-b") }]),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(ConflictError);
    expect((lost.reason as ConflictError).taken.map((t) => t.ip)).toEqual(["10.0.0.9"]);
    expect((await a.holders("10.0.0.9")).length).toBe(1);
  });

  test("an address cooling down or parked for a sticky pod stays held: no other daemon can create it", async () => {
    const prefix = `/holds-${process.pid}/`;
    const a = new EtcdStore(client(), prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const r = record("10.0.0.7", "pod-a");
    await a.commit([{ op: "allocate", record: r }]);
    await a.commit([{ op: "release", space: "net1", ip: r.ip, cause: "cni del", record: r }, { op: "cool", cooling: { space: "net1", family: 4, ip: r.ip, until: 1 } }]);
    expect(await a.holders(r.ip)).toEqual([]);
    await expect(b.commit([{ op: "allocate", record: record(r.ip, "thief") }])).rejects.toBeInstanceOf(ConflictError);
    const seen: string[] = [];
    await b.forEachAllocated((space, family, ip) => seen.push(`${space}/${family}/${ip}`));
    expect(seen).toEqual(["net1/4/10.0.0.7"]);
    await a.commit([{ op: "uncool", space: "net1", ip: r.ip }]);
    await b.commit([{ op: "allocate", record: record(r.ip, "next") }]);
    // Sticky: parked for its pod, taken back by a swap of the hold for the allocation.
    const s = record("10.0.0.8", "web-0-a");
    const binding = { space: "net1", pod: "default/web-0", family: 4 as const, ip: s.ip, releasedAt: null };
    await a.commit([{ op: "bind", binding }, { op: "allocate", record: s }]);
    await a.commit([{ op: "release", space: "net1", ip: s.ip, cause: "cni del", record: s }, { op: "bind", binding: { ...binding, releasedAt: 5 } }]);
    await expect(b.commit([{ op: "allocate", record: record(s.ip, "thief") }])).rejects.toBeInstanceOf(ConflictError);
    await b.commit([{ op: "bind", binding }, { op: "allocate", record: record(s.ip, "web-0-b"), replacesHold: true }]);
    expect((await a.holders(s.ip)).map((h) => h.containerID)).toEqual(["web-0-b"]);
  });

  test("node subnet claims are exclusive across daemons", async () => {
    const prefix = `/subnets-${process.pid}/`;
    const stores = ["n1", "n2", "n3"].map((node) => [node, new EtcdStore(client(), prefix, node)] as const);
    const pick = (others: string[], mine: string | null) => mine ?? ["s0", "s1", "s2", "s3"].find((s) => !others.includes(s)) ?? null;
    const claims = await Promise.all(stores.map(([node, s]) => s.claimNodeSubnet("pool", node, pick)));
    expect(new Set(claims).size).toBe(3);
    expect(await stores[0]![1].claimNodeSubnet("pool", "n1", pick)).toBe(claims[0]!);
  });

  test("etcd down: calls fail with 'try again later' (code 11) within the deadline", async () => {
    const dead = new EtcdStore(new EtcdClient(["http://127.0.0.1:1"]), "/x/");
    const started = performance.now();
    await expect(dead.commit([{ op: "cursor", pool: "p", ip: "10.0.0.1" }])).rejects.toMatchObject({ code: 11 });
    expect(performance.now() - started).toBeLessThan(2500);
  });
});
