/**
 * The Store contract (DESIGN rule 3): one suite every backend must pass. A backend's test
 * file calls storeContract() with a factory that opens a fresh store and one that reopens
 * the same data, as a restarted daemon would.
 */
import { describe, expect, test } from "bun:test";
import type { AllocationFilter, AllocationRecord, Store } from "../../src/store/store.ts";

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

/** forEachAllocated's answer with each address's kind: "ip allocated" or "ip held". */
async function takenWithKind(store: Store): Promise<string[]> {
  const out: string[] = [];
  await store.forEachAllocated((space, family, ip, held) => out.push(`${space}/${family}/${ip} ${held ? "held" : "allocated"}`));
  return out.sort();
}

/** Every page of a list, following `after` from the last of each page. */
async function allPages(store: Store, filter: AllocationFilter, size: number): Promise<AllocationRecord[][]> {
  const pages: AllocationRecord[][] = [];
  let after: AllocationFilter["after"];
  for (;;) {
    const page = await store.allocations({ ...filter, limit: size, ...(after ? { after } : {}) });
    if (page.length === 0) return pages;
    pages.push(page);
    after = { space: page[page.length - 1]!.space, ip: page[page.length - 1]!.ip };
  }
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
    test("attachments whose identifiers would alias in a path-like key stay apart, whatever bytes they hold", async () => {
      const store = await target.open();
      const slashed = record("10.0.0.2", "x/eth0", { ifname: "a" });
      const plain = record("10.0.0.3", "x", { ifname: "eth0" });
      const escaped = record("10.0.0.4", "x%2Feth0", { ifname: "a" });
      const unicode = record("10.0.0.5", "x\u00e9/\u2603 %", { ifname: "e/0" });
      await store.commit([{ op: "allocate", record: slashed }, { op: "allocate", record: plain }, { op: "allocate", record: escaped }, { op: "allocate", record: unicode }]);
      expect(await store.attachment("net1", { containerID: "x", ifname: "eth0" })).toEqual([plain]);
      expect(await store.attachment("net1", { containerID: "x/eth0", ifname: "a" })).toEqual([slashed]);
      expect(await store.attachment("net1", { containerID: "x%2Feth0", ifname: "a" })).toEqual([escaped]);
      expect(await store.attachment("net1", { containerID: unicode.containerID, ifname: "e/0" })).toEqual([unicode]);
      expect(await store.attachment("net1", { containerID: "x", ifname: "eth0/a" })).toEqual([]);
      await store.commit([{ op: "release", space: "net1", ip: plain.ip, cause: "cni del", record: plain }]);
      expect(await store.attachment("net1", { containerID: "x/eth0", ifname: "a" })).toEqual([slashed]);
      const keys = (await store.attachments("net1")).map((k) => `${k.containerID} ${k.ifname}`).sort();
      expect(keys).toEqual([`${unicode.containerID} e/0`, "x%2Feth0 a", "x/eth0 a"].sort());
      expect((await store.allocations({ containerID: "x/eth0" })).map((r) => r.ip)).toEqual(["10.0.0.2"]);
      await store.close();
    });

    test("holds (cooldown, a sticky pod's parked address) are replayed as holds, not as allocations, also after reopening", async () => {
      const store = await target.open();
      const cooled = record("10.0.0.2", "c1");
      const parked = record("10.0.0.3", "c2");
      const live = record("10.0.0.4", "c3");
      await store.commit([{ op: "allocate", record: cooled }, { op: "allocate", record: parked }, { op: "allocate", record: live }]);
      await store.commit([
        { op: "release", space: "net1", ip: cooled.ip, cause: "cni del", record: cooled },
        { op: "cool", cooling: { space: "net1", family: 4, ip: cooled.ip, until: Date.now() + 60_000 } },
      ]);
      await store.commit([
        { op: "release", space: "net1", ip: parked.ip, cause: "cni del", record: parked },
        { op: "bind", binding: { space: "net1", pod: "p:default/pod-c2", family: 4, ip: parked.ip, releasedAt: Date.now() } },
      ]);
      const expected = ["net1/4/10.0.0.2 held", "net1/4/10.0.0.3 held", "net1/4/10.0.0.4 allocated"];
      expect(await takenWithKind(store)).toEqual(expected);
      const again = await target.reopen(store);
      expect(await takenWithKind(again)).toEqual(expected);
      expect((await again.cooling()).map((c) => c.ip)).toEqual([cooled.ip]);
      expect((await again.bindings()).map((b) => `${b.pod} ${b.ip}`)).toEqual([`p:default/pod-c2 ${parked.ip}`]);
      expect((await again.allocations({})).map((r) => r.ip)).toEqual([live.ip]);
      await again.close();
    });

    test("admin reads: holders across spaces, allocations by each field, pages in address order", async () => {
      const store = await target.open();
      const records = [
        record("10.0.0.10", "c1", { node: "node-b", podNamespace: "prod", podName: "api-0" }),
        record("10.0.0.9", "c2"),
        record("fd00::2", "c1", { node: "node-b", podNamespace: "prod", podName: "api-0" }),
        record("10.0.0.2", "c3", { podName: "web-0" }),
        { ...record("10.0.0.2", "c4", { node: "node-b", podName: "db-0" }), space: "@ipv4", network: "other", pool: "v4" },
        record("10.0.1.1", "c5", { ifname: "net1" }),
      ];
      await store.commit(records.map((r) => ({ op: "allocate" as const, record: r })));
      const ips = (rs: AllocationRecord[]) => rs.map((r) => `${r.space} ${r.ip}`);
      expect(ips(await store.holders("10.0.0.2")).sort()).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2"]);
      expect(await store.holders("10.9.9.9")).toEqual([]);
      // Address order: by space, then IPv4 before IPv6, then numerically (10.0.0.9 before 10.0.0.10).
      const everything = ["@ipv4 10.0.0.2", "net1 10.0.0.2", "net1 10.0.0.9", "net1 10.0.0.10", "net1 10.0.1.1", "net1 fd00::2"];
      expect(ips(await store.allocations({}))).toEqual(everything);
      expect((await allPages(store, {}, 4)).map(ips)).toEqual([everything.slice(0, 4), everything.slice(4)]);
      expect((await allPages(store, {}, 1)).flatMap(ips)).toEqual(everything);
      expect(ips(await store.allocations({ node: "node-b" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.10", "net1 fd00::2"]);
      expect((await allPages(store, { node: "node-b" }, 2)).map(ips)).toEqual([["@ipv4 10.0.0.2", "net1 10.0.0.10"], ["net1 fd00::2"]]);
      expect(ips(await store.allocations({ podNamespace: "prod", podName: "api-0" }))).toEqual(["net1 10.0.0.10", "net1 fd00::2"]);
      expect(ips(await store.allocations({ podNamespace: "default" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2", "net1 10.0.0.9", "net1 10.0.1.1"]);
      expect(ips(await store.allocations({ containerID: "c1" }))).toEqual(["net1 10.0.0.10", "net1 fd00::2"]);
      expect(ips(await store.allocations({ ip: "10.0.0.2" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2"]);
      expect(ips(await store.allocations({ pool: "v4" }))).toEqual(["@ipv4 10.0.0.2"]);
      expect(ips(await store.allocations({ network: "other" }))).toEqual(["@ipv4 10.0.0.2"]);
      expect(ips(await store.allocations({ search: "web" }))).toEqual(["net1 10.0.0.2"]);
      expect(ips(await store.allocations({ node: "node-b", containerID: "c1", limit: 1 }))).toEqual(["net1 10.0.0.10"]);
      await store.close();
    });

    test("history: by address, container, pod and kind, newest first, a page at a time", async () => {
      const store = await target.open();
      const a = record("10.0.0.2", "c1");
      const b = record("10.0.0.3", "c2", { podNamespace: "prod", podName: "api-0" });
      await store.commit([{ op: "allocate", record: a }]);
      await store.commit([{ op: "allocate", record: b }]);
      await store.commit([{ op: "release", space: "net1", ip: a.ip, cause: "cni del", record: a }]);
      await store.commit([{ op: "release", space: "net1", ip: b.ip, cause: "netns gone", kind: "reclaimed", record: b }]);
      const again = record("10.0.0.2", "c3");
      await store.commit([{ op: "allocate", record: again, kind: "imported", cause: "import host-local" }]);
      const events = (filter: Parameters<Store["history"]>[0]) => store.history(filter).then((es) => es.map((e) => `${e.kind} ${e.ip} ${e.containerID}`));
      expect(await events({ ip: "10.0.0.2" })).toEqual(["imported 10.0.0.2 c3", "released 10.0.0.2 c1", "allocated 10.0.0.2 c1"]);
      expect(await events({ containerID: "c2" })).toEqual(["reclaimed 10.0.0.3 c2", "allocated 10.0.0.3 c2"]);
      expect(await events({ podNamespace: "prod", podName: "api-0" })).toEqual(["reclaimed 10.0.0.3 c2", "allocated 10.0.0.3 c2"]);
      expect(await events({ kind: "reclaimed" })).toEqual(["reclaimed 10.0.0.3 c2"]);
      expect(await events({ kind: "allocated" })).toEqual(["allocated 10.0.0.3 c2", "allocated 10.0.0.2 c1"]);
      const all = await store.history({});
      expect(all.map((e) => e.kind)).toEqual(["imported", "reclaimed", "released", "allocated", "allocated"]);
      const first = await store.history({ limit: 2 });
      const rest = await store.history({ before: { at: first[1]!.at, id: first[1]!.id } });
      expect([...first, ...rest]).toEqual(all);
      const byIp = await store.history({ ip: "10.0.0.2", limit: 1 });
      expect((await store.history({ ip: "10.0.0.2", before: { at: byIp[0]!.at, id: byIp[0]!.id } })).map((e) => e.kind)).toEqual(["released", "allocated"]);
      await store.close();
    });
  });
}
