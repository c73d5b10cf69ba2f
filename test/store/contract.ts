/**
 * The Store contract (DESIGN rule 3): one suite every backend must pass. A backend's test
 * file calls storeContract() with a factory that opens a fresh store and one that reopens
 * the same data, as a restarted daemon would.
 */
import { describe, expect, test } from "bun:test";
import type { AllocationRecord, Store } from "../../src/store/store.ts";

export interface ContractTarget {
  /** A new, empty store. */
  open(): Promise<Store>;
  /** The same data as `store`, opened again after it was closed. */
  reopen(store: Store): Promise<Store>;
}

export function record(ip: string, containerID: string, more: Partial<AllocationRecord> = {}): AllocationRecord {
  return {
    space: more.network ?? "net1",
    network: "net1",
    ip,
    family: ip.includes(":") ? 6 : 4,
    prefix: ip.includes(":") ? 64 : 24,
    gateway: ip.includes(":") ? "fd00::1" : "10.0.0.1",
    pool: "10.0.0.0/24[10.0.0.1-10.0.0.254 gw 10.0.0.1]",
    containerID,
    ifname: "eth0",
    netns: `/var/run/netns/${containerID}`,
    podNamespace: "default",
    podName: `pod-${containerID}`,
    podUid: null,
    node: "node-a",
    createdAt: 1_700_000_000_000,
    static: false,
    ...more,
  };
}

async function taken(store: Store): Promise<string[]> {
  const out: string[] = [];
  await store.forEachAllocated((space, family, ip) => out.push(`${space}/${family}/${ip}`));
  return out.sort();
}

export function storeContract(name: string, target: ContractTarget): void {
  describe(`Store contract: ${name}`, () => {
    test("an allocation is found by attachment, listed, and replayed as taken", async () => {
      const store = await target.open();
      await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "allocate", record: record("fd00::2", "c1") }]);
      expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([record("10.0.0.2", "c1"), record("fd00::2", "c1")]);
      expect(await store.attachment("net1", { containerID: "c1", ifname: "eth1" })).toEqual([]);
      expect(await store.attachment("net2", { containerID: "c1", ifname: "eth0" })).toEqual([]);
      expect(await store.attachments("net1")).toEqual([{ containerID: "c1", ifname: "eth0" }]);
      expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/6/fd00::2"]);
      await store.close();
    }, 30_000);

    test("release removes the address; cursors round-trip and are overwritten", async () => {
      const store = await target.open();
      await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "cursor", pool: "net1|p", ip: "10.0.0.2" }]);
      await store.commit([{ op: "release", space: "net1", ip: "10.0.0.2", cause: "test" }, { op: "cursor", pool: "net1|p", ip: "10.0.0.3" }]);
      expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
      expect(await taken(store)).toEqual([]);
      expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.0.3"]]));
      await store.close();
    }, 30_000);

    test("an address is held once per network: a duplicate commit fails whole, others in the same batch succeed", async () => {
      const store = await target.open();
      await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
      const results = await Promise.allSettled([
        store.commit([{ op: "allocate", record: record("10.0.0.3", "c2") }, { op: "allocate", record: record("10.0.0.2", "c2") }]),
        store.commit([{ op: "allocate", record: record("10.0.0.4", "c3") }]),
        store.commit([{ op: "allocate", record: record("10.0.0.2", "c4", { network: "net2" }) }]),
      ]);
      expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled", "fulfilled"]);
      // Nothing of the failed commit is left half-written.
      expect(await store.attachment("net1", { containerID: "c2", ifname: "eth0" })).toEqual([]);
      expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/4/10.0.0.4", "net2/4/10.0.0.2"]);
      await store.close();
    }, 30_000);

    test("many concurrent attachment lookups each get their own answer, unknown attachments none", async () => {
      const store = await target.open();
      // Odd containers hold an IPv4 and an IPv6 address, even ones only an IPv4 address.
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          store.commit([{ op: "allocate", record: record(`10.0.0.${i + 2}`, `c${i}`) }, ...(i % 2 ? [{ op: "allocate" as const, record: record(`fd00::${i + 2}`, `c${i}`) }] : [])]),
        ),
      );
      const expected = (i: number) => (i < 60 ? [record(`10.0.0.${i + 2}`, `c${i}`), ...(i % 2 ? [record(`fd00::${i + 2}`, `c${i}`)] : [])] : []);
      // More lookups at once than one etcd transaction may hold; c60 and up are unknown.
      const ids = Array.from({ length: 300 }, (_, n) => (n * 7) % 150);
      const answers = await Promise.all(ids.map((i) => store.attachment("net1", { containerID: `c${i}`, ifname: "eth0" })));
      ids.forEach((i, n) => expect({ containerID: `c${i}`, answer: answers[n] }).toEqual({ containerID: `c${i}`, answer: expected(i) }));
      const other = await Promise.all([
        store.attachment("net1", { containerID: "c1", ifname: "eth1" }),
        store.attachment("net2", { containerID: "c1", ifname: "eth0" }),
        store.attachment("net1", { containerID: "c1", ifname: "eth0" }),
      ]);
      expect(other).toEqual([[], [], expected(1)]);
      await store.close();
    }, 30_000);

    test("releasing an allocation that is already released succeeds and touches nothing else", async () => {
      const store = await target.open();
      const gone = record("10.0.0.2", "c1");
      const kept = record("10.0.0.3", "c2");
      await store.commit([{ op: "allocate", record: gone }, { op: "allocate", record: kept }]);
      await store.commit([{ op: "release", space: "net1", ip: gone.ip, cause: "cni del", record: gone }]);
      // A DEL retried by the runtime, alone and sharing a commit with others.
      await store.commit([{ op: "release", space: "net1", ip: gone.ip, cause: "cni del", record: gone }]);
      await Promise.all([
        store.commit([{ op: "release", space: "net1", ip: gone.ip, cause: "cni del", record: gone }, { op: "cursor", pool: "net1|p", ip: gone.ip }]),
        store.commit([{ op: "allocate", record: record("10.0.0.4", "c3") }]),
        store.commit([{ op: "release", space: "net1", ip: gone.ip, cause: "cni del" }]),
      ]);
      expect(await taken(store)).toEqual(["net1/4/10.0.0.3", "net1/4/10.0.0.4"]);
      expect(await store.attachment("net1", { containerID: "c2", ifname: "eth0" })).toEqual([kept]);
      expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
      expect(await store.cursors()).toEqual(new Map([["net1|p", gone.ip]]));
      // Explained once (DESIGN rule 7): the retried releases wrote no second event.
      const kinds = (await store.history({ ip: gone.ip })).map((e) => e.kind);
      expect({ ip: gone.ip, kinds }).toEqual({ ip: gone.ip, kinds: ["released", "allocated"] });
      await store.close();
    }, 30_000);

    test("the leak sweep's read: one node's allocations that name a netns, and only those", async () => {
      const store = await target.open();
      await store.commit([
        { op: "allocate", record: record("10.0.0.2", "c1") },
        { op: "allocate", record: record("fd00::2", "c1") },
        { op: "allocate", record: record("10.0.0.3", "c2", { netns: null }) },
        { op: "allocate", record: record("10.0.0.4", "c3", { netns: "" }) },
        { op: "allocate", record: record("10.0.0.5", "c4", { node: "node-b" }) },
      ]);
      const mine = await store.netnsAllocations("node-a");
      expect(mine.map((r) => `${r.ip} ${r.netns}`).sort()).toEqual(["10.0.0.2 /var/run/netns/c1", "fd00::2 /var/run/netns/c1"]);
      expect((await store.netnsAllocations("node-b")).map((r) => r.ip)).toEqual(["10.0.0.5"]);
      expect(await store.netnsAllocations("node-c")).toEqual([]);
      await store.close();
    }, 30_000);

    test("history retention: pruneHistory drops the events older than its bound, counts them, and touches nothing else", async () => {
      const store = await target.open();
      await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
      const [first] = await store.history({ containerID: "c1" });
      while (Date.now() <= first!.at) await Bun.sleep(1); // the next commit's events are a millisecond younger
      await store.commit([{ op: "release", space: "net1", ip: "10.0.0.2", cause: "cni del", record: record("10.0.0.2", "c1") }, { op: "allocate", record: record("10.0.0.3", "c2") }]);
      const second = (await store.history({ containerID: "c2" }))[0]!.at;
      expect(second).toBeGreaterThan(first!.at);
      const events = async () => (await store.history({})).map((e) => `${e.kind} ${e.containerID}`);
      expect(await store.pruneHistory(first!.at)).toBe(0); // strictly older only
      expect(await store.pruneHistory(second)).toBe(1);
      expect(await events()).toEqual(expect.arrayContaining(["released c1", "allocated c2"]));
      expect((await events()).length).toBe(2);
      expect(await store.pruneHistory(second)).toBe(0);
      expect(await store.pruneHistory(second + 1)).toBe(2);
      expect(await events()).toEqual([]);
      expect(await taken(store)).toEqual(["net1/4/10.0.0.3"]);
      await store.close();
    }, 30_000);

    test("what was committed survives closing and reopening", async () => {
      const store = await target.open();
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit([{ op: "allocate", record: record(`10.0.0.${i + 2}`, `c${i}`) }])));
      await store.commit([{ op: "cursor", pool: "net1|p", ip: "10.0.0.51" }]);
      const again = await target.reopen(store);
      expect((await taken(again)).length).toBe(50);
      expect(await again.attachment("net1", { containerID: "c7", ifname: "eth0" })).toEqual([record("10.0.0.9", "c7")]);
      expect(await again.cursors()).toEqual(new Map([["net1|p", "10.0.0.51"]]));
      await again.close();
    }, 30_000);
  });
}
