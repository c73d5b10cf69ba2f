import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Engine } from "../../src/engine/engine.ts";
import { searchStart } from "../../src/engine/blocks.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { ConflictError, LimitError } from "../../src/store/store.ts";
import { Layout } from "../../src/store/etcd/layout.ts";
import { cleanup } from "../e2e/harness.ts";
import { record, storeContract } from "./contract.ts";
import { cooling, sticky } from "./contract/support.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  // The contract holds on a real 3-member cluster: every commit and read goes through raft.
  etcd = await startEtcd({ members: 3 });
}, 30_000);
afterAll(cleanup);

let n = 0;
const client = () => new EtcdClient(etcd.endpoints);

/**
 * A real client that lets another daemon act at a chosen moment of this one's commit: right
 * after it reads a key, or right after a transaction that failed its compares. Each hook runs
 * once; everything still goes to the real etcd.
 */
class RacingClient extends EtcdClient {
  afterRange: (() => Promise<unknown>) | undefined;
  afterFailedTxn: (() => Promise<unknown>) | undefined;

  override async range(...args: Parameters<EtcdClient["range"]>): ReturnType<EtcdClient["range"]> {
    const kvs = await super.range(...args);
    const hook = this.afterRange;
    this.afterRange = undefined;
    await hook?.();
    return kvs;
  }

  override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
    const result = await super.txn(...args);
    const hook = result.succeeded ? undefined : this.afterFailedTxn;
    if (hook) this.afterFailedTxn = undefined;
    await hook?.();
    return result;
  }
}

/** Every address a daemon may not take (allocations and holds), as "space/family/ip". */
async function taken(store: EtcdStore): Promise<string[]> {
  const out: string[] = [];
  await store.forEachTaken((space, family, ip) => out.push(`${space}/${family}/${ip}`));
  return out.sort();
}

const kindsAt = async (store: EtcdStore, ip: string) => ({ ip, kinds: (await store.history({ ip })).map((e) => e.kind) });

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
  }, 30_000);

  test("an allocation whose answer was lost and was sent again finds its own record: done, once, with one event", async () => {
    // What the client does when an attempt times out after etcd applied it (a member that
    // answers too late): the same transaction goes out again; its first answer is lost.
    class LostAnswerClient extends EtcdClient {
      override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
        await super.txn(...args);
        return super.txn(...args);
      }
    }
    const store = new EtcdStore(new LostAnswerClient(etcd.endpoints), `/lost-answer-${process.pid}/`, "node-a");
    await store.commit([{ op: "allocate", record: record("10.0.0.11", "lost-answer") }]);
    expect((await store.holders("10.0.0.11")).map((r) => r.containerID)).toEqual(["lost-answer"]);
    expect((await kindsAt(store, "10.0.0.11")).kinds).toEqual(["allocated"]);
  }, 30_000);

  test("a namespace limit holds across daemons: of eight ADDs from two daemons at once, exactly the limit's worth commit", async () => {
    const prefix = `/limit-${process.pid}/`;
    const [a, b] = [new EtcdStore(client(), prefix, "node-a"), new EtcdStore(client(), prefix, "node-b")];
    const add = (store: EtcdStore, i: number) => {
      const r = record(`10.9.0.${i + 1}`, `c${i}`, { space: "@ipv4", pool: "v4", rangeSet: null, podNamespace: "team-a" });
      return store.commit([{ op: "allocate", record: r }, { op: "limit", pool: "v4", namespace: "team-a", max: 3 }]);
    };
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => add(i % 2 ? a : b, i)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LimitError);
    expect(await a.allocations({ pool: "v4", podNamespace: "team-a" })).toHaveLength(3);
  }, 30_000);

  test("a namespace's count key left behind by an older daemon (its allocation gone) does not count against the limit", async () => {
    const prefix = `/stray-${process.pid}/`;
    const store = new EtcdStore(client(), prefix, "node-a");
    const layout = new Layout(prefix);
    const gone = record("10.9.0.99", "old", { space: "@ipv4", pool: "v4", rangeSet: null, podNamespace: "team-a" });
    const stray = layout.namespaceEntry(gone)!;
    await client().put(stray, "");
    const r = record("10.9.0.1", "c1", { space: "@ipv4", pool: "v4", rangeSet: null, podNamespace: "team-a" });
    await store.commit([{ op: "allocate", record: r }, { op: "limit", pool: "v4", namespace: "team-a", max: 1 }]);
    expect(await client().range(stray)).toEqual([]);
    expect(await store.allocations({ pool: "v4", podNamespace: "team-a" })).toHaveLength(1);
    // A real one still counts.
    const over = await store.commit([{ op: "allocate", record: { ...r, ip: "10.9.0.2", containerID: "c2" } }, { op: "limit", pool: "v4", namespace: "team-a", max: 1 }]).catch((e) => e);
    expect(over).toBeInstanceOf(LimitError);
  }, 30_000);

  test("an address cooling down or parked for a sticky pod stays held: no other daemon can create it", async () => {
    const prefix = `/holds-${process.pid}/`;
    const a = new EtcdStore(client(), prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const r = record("10.0.0.7", "pod-a");
    await a.commit([{ op: "allocate", record: r }]);
    await a.commit([{ op: "release", record: r, cause: "cni del" }, { op: "hold", hold: cooling(r.ip, 1) }]);
    expect(await a.holders(r.ip)).toEqual([]);
    await expect(b.commit([{ op: "allocate", record: record(r.ip, "thief") }])).rejects.toBeInstanceOf(ConflictError);
    expect(await taken(b)).toEqual(["net1/4/10.0.0.7"]);
    await a.commit([{ op: "unhold", hold: cooling(r.ip, 1) }]);
    await b.commit([{ op: "allocate", record: record(r.ip, "next") }]);
    // Sticky: parked for its pod, taken back on another node by a swap of the hold for the allocation.
    const s = record("10.0.0.8", "web-0-a");
    const binding = { space: "net1", pod: "web:default/web-0", family: 4 as const, ip: s.ip, releasedAt: null };
    await a.commit([{ op: "bind", binding }, { op: "allocate", record: s }]);
    await a.commit([{ op: "release", record: s, cause: "cni del" }, { op: "hold", hold: sticky(s.ip, binding.pod) }, { op: "bind", binding: { ...binding, releasedAt: 5 } }]);
    await expect(b.commit([{ op: "allocate", record: record(s.ip, "thief") }])).rejects.toBeInstanceOf(ConflictError);
    await b.commit([{ op: "unhold", hold: sticky(s.ip, binding.pod) }, { op: "bind", binding }, { op: "allocate", record: record(s.ip, "web-0-b") }]);
    expect((await a.holders(s.ip)).map((h) => h.containerID)).toEqual(["web-0-b"]);
  }, 30_000);

  test("concurrent attachment lookups share round trips to etcd", async () => {
    const c = client();
    const store = new EtcdStore(c, `/lookups-${process.pid}/`, "node-a");
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.commit([{ op: "allocate", record: record(`10.0.1.${i + 2}`, `c${i}`) }])));
    const before = c.requests;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => store.attachment("net1", { containerID: `c${i}`, ifname: "eth0" })));
    // The first lookup goes alone; the 199 queued behind it go as two transactions (120 ops at most each).
    expect({ requests: c.requests - before }).toEqual({ requests: 3 });
    answers.forEach((a, i) => expect(a).toEqual(i < 100 ? [record(`10.0.1.${i + 2}`, `c${i}`)] : []));
  }, 30_000);

  test("a lookup batch etcd refuses fails only its own callers", async () => {
    const store = new EtcdStore(client(), `/lookup-errors-${process.pid}/`, "node-a");
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
    const lookup = (containerID: string) => store.attachment("net1", { containerID, ifname: "eth0" });
    // The first goes out alone; the next two share a request too large for etcd (--max-request-bytes 1.5 MiB).
    const [alone, huge, queued] = await Promise.allSettled([lookup("c1"), lookup("x".repeat(2 * 1024 * 1024)), lookup("c1")]);
    expect(alone).toEqual({ status: "fulfilled", value: [record("10.0.0.2", "c1")] });
    expect(huge.status).toBe("rejected");
    expect(queued.status).toBe("rejected");
    expect(await lookup("c1")).toEqual([record("10.0.0.2", "c1")]);
  }, 30_000);

  test("a stale release never deletes or covers a newer owner's allocation; only the stale caller of a shared commit fails", async () => {
    const prefix = `/stale-${process.pid}/`;
    const a = new EtcdStore(client(), prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const old = record("10.0.0.5", "pod-a", { node: "node-a" });
    await a.commit([{ op: "allocate", record: old }]);
    // Released meanwhile (say by an operator on another node), and handed out again by B.
    await b.commit([{ op: "release", record: old, cause: "operator" }]);
    const newer = record(old.ip, "pod-b", { node: "node-b" });
    await b.commit([{ op: "allocate", record: newer }]);
    // A's DEL read the old record before all that and commits its release only now.
    const stale = a.commit([{ op: "release", record: old, cause: "cni del" }]);
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    await expect(stale).rejects.toMatchObject({ taken: [{ space: "net1", family: 4, ip: old.ip }] });
    // With a cooldown the release would put a hold marker over the key: refused just the same.
    await expect(a.commit([{ op: "release", record: old, cause: "cni del" }, { op: "hold", hold: cooling(old.ip, 1) }])).rejects.toBeInstanceOf(ConflictError);
    // Sharing a group commit with others: the stale release alone fails.
    const released = record("10.0.0.6", "pod-c");
    await a.commit([{ op: "allocate", record: released }]);
    await a.commit([{ op: "release", record: released, cause: "cni del" }]);
    const busy = a.commit([{ op: "cursor", rangeSet: "net1|p", ip: "10.0.0.1" }]);
    const results = await Promise.allSettled([
      a.commit([{ op: "release", record: old, cause: "cni del" }]),
      a.commit([{ op: "allocate", record: record("10.0.0.7", "pod-d") }]),
      a.commit([{ op: "release", record: released, cause: "cni del" }]),
    ]);
    await busy;
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled", "fulfilled"]);
    expect(await a.holders(old.ip)).toEqual([newer]);
    expect(await a.attachment("net1", { containerID: "pod-b", ifname: "eth0" })).toEqual([newer]);
    expect(await taken(b)).toEqual(["net1/4/10.0.0.5", "net1/4/10.0.0.7"]);
    // The newer owner's own release still works.
    await b.commit([{ op: "release", record: newer, cause: "cni del" }]);
    expect(await b.holders(old.ip)).toEqual([]);
  }, 30_000);

  test("a release of an address released elsewhere meanwhile writes no second event; its cooldown and parking hold the free key; the rest of the commit stands", async () => {
    const prefix = `/gone-${process.pid}/`;
    const a = new EtcdStore(client(), prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const cooled = record("10.0.0.2", "c1");
    const parked = record("10.0.0.3", "web-0");
    const binding = { space: "net1", pod: "web:default/web-0", family: 4 as const, ip: parked.ip, releasedAt: null };
    await a.commit([{ op: "allocate", record: cooled }, { op: "allocate", record: parked }, { op: "bind", binding }]);
    // An operator on node B releases both; A's DELs read the records before that and commit only now.
    await b.commit([
      { op: "release", record: cooled, cause: "operator" },
      { op: "release", record: parked, cause: "operator" },
    ]);
    const busy = a.commit([{ op: "cursor", rangeSet: "net1|p", ip: "10.0.0.1" }]);
    await Promise.all([
      a.commit([{ op: "release", record: cooled, cause: "cni del" }, { op: "hold", hold: cooling(cooled.ip, 1) }, { op: "cursor", rangeSet: "net1|p", ip: cooled.ip }]),
      a.commit([{ op: "release", record: parked, cause: "cni del" }, { op: "hold", hold: sticky(parked.ip, binding.pod) }, { op: "bind", binding: { ...binding, releasedAt: 5 } }]),
      a.commit([{ op: "allocate", record: record("10.0.0.4", "c3") }]),
    ]);
    await busy;
    // Each allocation explained once; the cooldown and the parking hold their addresses, as
    // A's memory has it (a sticky pod's return swaps the hold).
    expect(await kindsAt(a, cooled.ip)).toEqual({ ip: cooled.ip, kinds: ["released", "allocated"] });
    expect(await kindsAt(a, parked.ip)).toEqual({ ip: parked.ip, kinds: ["released", "allocated"] });
    expect(await taken(a)).toEqual(["net1/4/10.0.0.2", "net1/4/10.0.0.3", "net1/4/10.0.0.4"]);
    await expect(b.commit([{ op: "allocate", record: record(parked.ip, "b0") }])).rejects.toBeInstanceOf(ConflictError);
    // The rest of those commits stands.
    expect(await a.cursors()).toEqual(new Map([["net1|p", cooled.ip]]));
    expect(await a.holds()).toEqual([sticky(parked.ip, binding.pod), cooling(cooled.ip, 1)].sort((x, y) => (x.until ?? 0) - (y.until ?? 0)));
    expect(await a.bindings()).toEqual([{ ...binding, releasedAt: 5 }]);
    expect(await a.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
    // The cooldown and the parking end; the addresses are free for B.
    await a.commit([{ op: "unhold", hold: cooling(cooled.ip, 1) }, { op: "unhold", hold: sticky(parked.ip, binding.pod) }, { op: "unbind", space: "net1", pod: binding.pod }]);
    expect({ holds: await a.holds(), bindings: await a.bindings() }).toEqual({ holds: [], bindings: [] });
    await b.commit([{ op: "allocate", record: record(cooled.ip, "b1") }, { op: "allocate", record: record(parked.ip, "b2") }]);
  }, 30_000);

  test("a release found gone, whose address is taken again before the retry, fails as a conflict naming it", async () => {
    const prefix = `/gone-taken-${process.pid}/`;
    const racing = new RacingClient(etcd.endpoints);
    const a = new EtcdStore(racing, prefix, "node-a");
    const b = new EtcdStore(client(), prefix, "node-b");
    const old = record("10.0.0.5", "pod-a");
    await a.commit([{ op: "allocate", record: old }]);
    await b.commit([{ op: "release", record: old, cause: "operator" }]);
    const newer = record(old.ip, "pod-b", { node: "node-b" });
    racing.afterFailedTxn = () => b.commit([{ op: "allocate", record: newer }]);
    const stale = a.commit([{ op: "release", record: old, cause: "cni del" }, { op: "hold", hold: cooling(old.ip, 1) }]);
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    await expect(stale).rejects.toMatchObject({ taken: [{ space: "net1", family: 4, ip: old.ip }] });
    expect(await a.holders(old.ip)).toEqual([newer]);
    expect(await a.holds()).toEqual([]);
    expect(await kindsAt(a, old.ip)).toEqual({ ip: old.ip, kinds: ["allocated", "released", "allocated"] });
  }, 30_000);

  test("etcd judges compares, success ops and failure ops apart against --max-txn-ops (128 by default)", async () => {
    const c = client();
    const keys = (count: number) => Array.from({ length: count }, (_, i) => `/txn-ops-${process.pid}/${i}`);
    const compares = (count: number) => keys(count).map((key) => ({ key, target: "CREATE" as const, result: "EQUAL" as const, create_revision: 0 }));
    const puts = (count: number) => keys(count).map((key) => ({ put: { key, value: "x" } }));
    const ranges = (count: number) => keys(count).map((key) => ({ range: { key } }));
    expect((await c.txn(compares(128), puts(128), ranges(128))).succeeded).toBe(true);
    for (const [cmp, ok, failed] of [[129, 0, 0], [0, 129, 0], [0, 0, 129]] as const) {
      await expect(c.txn(compares(cmp), puts(ok), ranges(failed))).rejects.toThrow("too many operations in txn request");
    }
  }, 30_000);

  test("a group commit takes as many callers as etcd's 128 operations per transaction allow", async () => {
    const store = new EtcdStore(client(), `/batches-${process.pid}/`, "node-a");
    const batches: number[] = [];
    store.onCommit = (_, callers) => batches.push(callers);
    const busy = store.commit([{ op: "cursor", rangeSet: "net1|p", ip: "10.0.2.1" }]);
    // Like 39 ADDs of pods: 7 writes each (the allocation, its attachment, node and pod keys,
    // its event's address, container and pod index keys) and 1 compare, one cursor they all
    // move, their space's sp/ key and one ev/ key holding all their events: 16 fit in 115 writes.
    await Promise.all(Array.from({ length: 39 }, (_, i) => store.commit([{ op: "cursor", rangeSet: "net1|p", ip: `10.0.2.${i + 2}` }, { op: "allocate", record: record(`10.0.2.${i + 2}`, `c${i}`) }])));
    await busy;
    // Full batches fly beside the busy one and land in any order; the last, not full, waits for one to land.
    expect(batches.sort((a, b) => a - b)).toEqual([1, 7, 16, 16]);
    expect((await store.allocations({})).length).toBe(39);
    expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.2.40"]]));
  }, 30_000);

  test("concurrent ADDs that find a node's blocks full share each block claim, and stay inside the node's blocks", async () => {
    /** Counts the block claims (a compare-and-create of a block/ key) it sends. */
    class CountingClient extends EtcdClient {
      claims = 0;
      override txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
        if (args[0].some((cmp) => cmp.target === "CREATE" && cmp.key.includes("/block/"))) this.claims++;
        return super.txn(...args);
      }
    }
    const c = new CountingClient(etcd.endpoints);
    const prefix = `/claims-${process.pid}/`;
    const service = await Engine.start(new EtcdStore(c, prefix, "node-a"), { node: "node-a", blockSizes: { v4: 28, v6: 122 } });
    // 10.5.0.0/24 cut into /28 blocks, searched from node-a's own place (engine/blocks.ts):
    // blocks hold 16 addresses but the lowest (.0 and the gateway .1 are never handed out) and
    // the highest (.255). Fill node-a's first block, then 50 ADDs at once need 4 more.
    const start = Number(searchStart("node-a", 16n));
    const mine = [0, 1, 2, 3, 4].map((i) => (start + i) % 16);
    const capacity = (b: number) => 16 - (b === 0 ? 2 : 0) - (b === 15 ? 1 : 0);
    const add = (id: string) => service.add({ network: "claims", containerID: id, ifname: "eth0", ranges: [[{ subnet: "10.5.0.0/24" }]] });
    for (let i = 0; i < capacity(mine[0]!); i++) await add(`first-${i}`);
    const before = c.claims;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => add(`c${i}`)));
    const claims = c.claims - before;
    const blocks = (await new EtcdStore(c, prefix).blocks()).map((b) => `${b.cidr} ${b.node}`).sort();
    expect(blocks).toEqual(mine.map((b) => `10.5.0.${b * 16}/28 node-a`).sort());
    const last = answers.map((a) => Number(a[0]!.address.split(".")[3]));
    expect(new Set(last).size).toBe(50);
    expect(last.filter((n) => !mine.slice(1).includes(Math.floor(n / 16)))).toEqual([]);
    // Shared: one claim per block the 50 needed, however their requests interleave.
    expect(claims).toBe(4);
  }, 30_000);

  test("an ADD costs one etcd request, its commit; a repeated ADD is answered with what the attachment holds", async () => {
    const c = client();
    const service = await Engine.start(new EtcdStore(c, `/add-requests-${process.pid}/`, "node-a"), { node: "node-a" });
    const req = (containerID: string) => ({ network: "plain", containerID, ifname: "eth0", ranges: [[{ subnet: "10.4.0.0/24" }]], pod: { namespace: "default", name: containerID } });
    await service.add(req("first")); // claims the node's block too
    let before = c.requests;
    const [answer] = await service.add(req("c1"));
    expect(c.requests - before).toBe(1);
    // Repeated: its commit is refused (the attachment holds an address), then that address is read.
    before = c.requests;
    expect(await service.add(req("c1"))).toEqual([answer!]);
    expect(c.requests - before).toBe(2);
    expect((await service.store.attachment("plain", { containerID: "c1", ifname: "eth0" })).length).toBe(1);
  }, 30_000);

  test("a pod's DEL in a pool that is not sticky costs two etcd requests: its lookup and its commit", async () => {
    const c = client();
    const service = await Engine.start(new EtcdStore(c, `/del-requests-${process.pid}/`, "node-a"), { node: "node-a" });
    const req = { network: "plain", containerID: "c1", ifname: "eth0", ranges: [[{ subnet: "10.3.0.0/24" }]], pod: { namespace: "default", name: "web-0" } };
    await service.add(req);
    const before = c.requests;
    await service.del(req);
    expect(c.requests - before).toBe(2);
  }, 30_000);

  test("node subnet claims are exclusive across daemons", async () => {
    const prefix = `/subnets-${process.pid}/`;
    const stores = ["n1", "n2", "n3"].map((node) => [node, new EtcdStore(client(), prefix, node)] as const);
    const pick = (others: string[], mine: string | null) => mine ?? ["s0", "s1", "s2", "s3"].find((s) => !others.includes(s)) ?? null;
    const claims = await Promise.all(stores.map(([node, s]) => s.claimNodeSubnet("pool", node, pick)));
    expect(new Set(claims).size).toBe(3);
    expect(await stores[0]![1].claimNodeSubnet("pool", "n1", pick)).toBe(claims[0]!);
  }, 30_000);

  test("etcd down: calls fail with 'try again later' (code 11) within the deadline", async () => {
    const dead = new EtcdStore(new EtcdClient(["http://127.0.0.1:1"]), "/x/");
    const started = performance.now();
    await expect(dead.commit([{ op: "cursor", rangeSet: "p", ip: "10.0.0.1" }])).rejects.toMatchObject({ code: 11 });
    expect(performance.now() - started).toBeLessThan(2500);
  }, 30_000);
});
