/**
 * The Store contract on a real kube-apiserver (one per file, with the store's CRDs), then what
 * only this store has to prove: daemons racing through compare-and-swap, batches sharing a
 * write, commits that span blocks (never half-applied, whatever fails when), and an API
 * server that cannot be reached. Each store gets a namespace of its own (the store's objects
 * live in one namespace, as the etcd store's keys live under one prefix).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { KubeClient } from "../../src/kube/client.ts";
import { KubeConnectionError } from "../../src/kube/errors.ts";
import { KubeTransport } from "../../src/kube/transport.ts";
import { IPAMBlocks, resourcePath } from "../../src/kube/resources.ts";
import { blockSpecWire, type IPAMBlock } from "../../src/kube/schemas/store.ts";
import { KubeStore } from "../../src/store/kube.ts";
import { blockName } from "../../src/store/kube/names.ts";
import { StorageFault } from "../../src/store/storage-fault.ts";
import { type AllocationRecord, type Change, ConflictError, LimitError } from "../../src/store/store.ts";
import { cleanup, tempDir, waitFor } from "../e2e/harness.ts";
import type { KubeApiserver } from "../kube/apiserver.ts";
import { adminConnection, installCrds, STORE_CRDS, startWithAdmin } from "../kube/helpers.ts";
import { startTcpProxy } from "../kube/tcp-proxy.ts";
import { storeContract } from "./contract.ts";
import { record, reopenableTarget } from "./contract/support.ts";
import { freshNamespace, HookedClient, openReportingStore, openStore, storedBlocks } from "./kube-env.ts";

let kube: KubeApiserver;
let client: KubeClient;

beforeAll(async () => {
  ({ kube, client } = await startWithAdmin());
  await installCrds(client, STORE_CRDS);
}, 120_000);
afterAll(cleanup);

// Each store in a namespace of its own, its local database kept across a reopen (removed with the temp dir at the end).
storeContract(
  "kubernetes",
  reopenableTarget(() => freshNamespace(client), (namespace, db) => openStore(client, namespace, "", db), () => join(tempDir("ipamd-contract-"), "local.db")),
);

const hooked = () => new HookedClient(new KubeTransport(adminConnection(kube), { timeoutMs: 10_000 }));
const dual = (i: number, containerID = `c${i}`) => [
  { op: "allocate" as const, record: record(`10.0.0.${i + 2}`, containerID) },
  { op: "allocate" as const, record: record(`fd00::${i + 2}`, containerID) },
];
const V4 = blockName("net1", "10.0.0.0/26");
const V6 = blockName("net1", "fd00::/122");

describe("Kubernetes-API store specifics", () => {
  test("two daemons racing for one address: exactly one wins, the other gets a ConflictError naming it, whatever its cache showed", async () => {
    const namespace = await freshNamespace(client);
    const [a, b] = await Promise.all([openStore(client, namespace, "node-a"), openStore(client, namespace, "node-b")]);
    const results = await Promise.allSettled([a.commit([{ op: "allocate", record: record("10.0.0.9", "from-a") }]), b.commit([{ op: "allocate", record: record("10.0.0.9", "from-b") }])]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(ConflictError);
    expect((lost.reason as ConflictError).taken.map((t) => t.ip)).toEqual(["10.0.0.9"]);
    // A cooldown made on one daemon holds on the other at once, seen or not by its watch.
    const winner = results[0]!.status === "fulfilled" ? a : b;
    const other = winner === a ? b : a;
    const r = (await winner.holders("10.0.0.9"))[0]!;
    await winner.commit([{ op: "release", record: r, cause: "cni del" }, { op: "hold", hold: { space: "net1", family: 4, ip: r.ip, kind: "cooling", until: 1, pod: null } }]);
    await expect(other.commit([{ op: "allocate", record: record(r.ip, "thief") }])).rejects.toBeInstanceOf(ConflictError);
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  test("a namespace limit holds across daemons: of eight ADDs from two daemons at once, exactly the limit's worth commit", async () => {
    const namespace = await freshNamespace(client);
    const [a, b] = await Promise.all([openStore(client, namespace, "node-a"), openStore(client, namespace, "node-b")]);
    const add = (store: KubeStore, i: number) => {
      const r = record(`10.9.0.${i + 1}`, `c${i}`, { space: "@ipv4", pool: "v4", rangeSet: null, podNamespace: "team-a" });
      return store.commit([{ op: "allocate", record: r }, { op: "limit", pool: "v4", namespace: "team-a", max: 3 }]);
    };
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => add(i % 2 ? a : b, i)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LimitError);
    await waitFor(async () => (await a.allocations({ pool: "v4", podNamespace: "team-a" })).length === 3, 5000, "a's watch to show the three");
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  test("concurrent ADDs landing in one block share a write; attachment lookups send no request", async () => {
    const store = await openStore(client, await freshNamespace(client), "node-a");
    const before = store.api.writes;
    const busy = store.commit([{ op: "allocate", record: record("10.0.0.2", "first") }]);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit([{ op: "allocate", record: record(`10.0.0.${i + 3}`, `c${i}`) }, { op: "cursor", rangeSet: "net1|p", ip: `10.0.0.${i + 3}` }])));
    await busy;
    // The first went alone; the 50 queued behind it went as one.
    expect({ writes: store.api.writes - before }).toEqual({ writes: 2 });
    const requests = { ...store.api.requests };
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => store.attachment("net1", { containerID: `c${i}`, ifname: "eth0" })));
    expect(store.api.requests).toEqual(requests);
    answers.forEach((a, i) => expect(a).toEqual(i < 50 ? [record(`10.0.0.${i + 3}`, `c${i}`)] : []));
    expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.0.52"]]));
    await store.close();
  }, 30_000);

  test("dual-stack commits: two writes per batch; once tidied no block holds a pending change or a marker", async () => {
    const namespace = await freshNamespace(client);
    const store = await openStore(client, namespace, "node-a");
    const before = store.api.writes;
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.commit(dual(i))));
    expect(store.api.writes - before).toBeLessThanOrEqual(4);
    await waitFor(async () => (await storedBlocks(client, namespace)).every((b) => !b.spec.pending && !b.spec.commits), 5000, "pending changes and markers to be cleared");
    const stored = await storedBlocks(client, namespace);
    expect(stored.map((b) => [b.spec.cidr, Object.keys(b.spec.allocations ?? {}).length]).sort()).toEqual([["10.0.0.0/26", 20], ["fd00::/122", 20]]);
    expect(await store.attachment("net1", { containerID: "c7", ifname: "eth0" })).toEqual(dual(7).map((c) => c.record));
    await store.close();
  }, 30_000);

  test("a commit spanning blocks that loses at its primary after its pending change was written leaves nothing behind", async () => {
    const namespace = await freshNamespace(client);
    const racing = hooked();
    const a = await openStore(racing, namespace, "node-a");
    const b = await openStore(client, namespace, "node-b");
    racing.before = async (name) => {
      if (name !== V4) return;
      racing.before = undefined;
      // Between a's two stages: its pending change keeps fd00::2 from everyone.
      await expect(b.commit([{ op: "allocate", record: record("fd00::2", "b-early") }])).rejects.toBeInstanceOf(ConflictError);
      await b.commit([{ op: "allocate", record: record("10.0.0.2", "b-wins") }]);
    };
    const lost = await a.commit(dual(0, "a-loses")).then(() => null, (e) => e);
    expect(lost).toBeInstanceOf(ConflictError);
    expect((lost as ConflictError).taken.map((t) => t.ip)).toEqual(["10.0.0.2"]);
    expect(await a.attachment("net1", { containerID: "a-loses", ifname: "eth0" })).toEqual([]);
    await waitFor(async () => (await storedBlocks(client, namespace)).every((x) => !x.spec.pending), 5000, "the abandoned pending change to go");
    await b.commit([{ op: "allocate", record: record("fd00::2", "b-next") }]);
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  for (const when of ["before", "after"] as const) {
    test(`a daemon that dies when its primary write is ${when === "before" ? "not sent" : "sent but not answered"}: the next start finds the commit ${when === "before" ? "never happened" : "happened"}, and settles it`, async () => {
      const namespace = await freshNamespace(client);
      const dying = hooked();
      const db = `${process.env.TMPDIR ?? "/tmp"}/ipamd-dying-${process.pid}-${namespace}.db`;
      const first = await openStore(dying, namespace, "node-d", db);
      dying.before = (name) => {
        if (name !== V4) return;
        dying.dead = true; // from here on, as if the process were gone: it learns nothing more
        if (when === "before") throw new KubeConnectionError("connection reset (test)");
      };
      dying.after = (name) => {
        if (name === V4) throw new KubeConnectionError("connection reset (test)");
      };
      const failed = await first.commit(dual(0, "pod")).then(() => null, (e) => e);
      expect(failed).toMatchObject({ code: 11 });
      await first.close();
      const again = await openStore(client, namespace, "node-d", db);
      await waitFor(async () => (await storedBlocks(client, namespace)).every((x) => !x.spec.pending && !x.spec.commits), 5000, "the dead process's commit to be settled");
      expect(await again.attachment("net1", { containerID: "pod", ifname: "eth0" })).toEqual(when === "before" ? [] : dual(0, "pod").map((c) => c.record));
      await again.close();
    }, 30_000);
  }

  test("a block edited by hand into a shape ipamd cannot read is reported, is never written over, and serves again once mended", async () => {
    const namespace = await freshNamespace(client);
    const { store, reported } = await openReportingStore(client, namespace, "node-a");
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "a") }]);
    const good = (await client.get(IPAMBlocks, V4, { namespace })) as IPAMBlock;
    const wire = blockSpecWire(good.spec);
    // Written and read raw: our own client refuses to read such a block, as the store does.
    const path = resourcePath(IPAMBlocks, { namespace, name: V4 });
    const raw = async (method: string, body?: object) => (await client.transport.request(method, path, { body })) as { metadata: { resourceVersion: string } };
    const broken = await raw("PUT", { apiVersion: "ipamd.io/v1alpha1", kind: "IPAMBlock", metadata: good.metadata, spec: { ...wire, allocations: "10.0.0.2 not an entry" } });
    await waitFor(() => reported.length > 0, 5000, "the unreadable block to be reported");
    expect(reported[0]).toContain(V4);
    const refused = await store.commit([{ op: "allocate", record: record("10.0.0.3", "b") }]).then(() => null, (e) => e);
    expect(refused).toBeInstanceOf(StorageFault);
    expect(refused.message).toContain("10.0.0.2");
    expect((await raw("GET")).metadata.resourceVersion).toBe(broken.metadata.resourceVersion);
    await client.update(IPAMBlocks, { metadata: { name: V4, namespace, resourceVersion: broken.metadata.resourceVersion }, spec: wire });
    await store.commit([{ op: "allocate", record: record("10.0.0.3", "b") }]);
    expect((await store.allocations({})).map((r) => r.ip)).toEqual(["10.0.0.2", "10.0.0.3"]);
    await store.close();
  }, 30_000);

  test("lookups by attachment, container, pod and node stay exact as their keys gain and lose allocations", async () => {
    const store = await openStore(client, await freshNamespace(client), "node-a");
    const [v4, v6] = dual(0, "a").map((c) => c.record) as [AllocationRecord, AllocationRecord];
    await store.commit(dual(0, "a")); // two allocations under each of a's keys
    await store.commit([{ op: "allocate", record: record("10.0.0.9", "b") }]);
    await store.commit([{ op: "release", record: v4, cause: "cni del" }]); // one left under each
    const again = record(v4.ip, "c");
    await store.commit([{ op: "allocate", record: again }]); // its address, under another's keys
    expect(await store.attachment("net1", { containerID: "a", ifname: "eth0" })).toEqual([v6]);
    expect(await store.allocations({ containerID: "a" })).toEqual([v6]);
    expect(await store.allocations({ podNamespace: "default", podName: "pod-a" })).toEqual([v6]);
    expect(await store.allocations({ containerID: "c" })).toEqual([again]);
    await store.commit([{ op: "allocate", record: record("fd00::9", "c") }]); // c's keys: two again
    await store.commit([{ op: "release", record: v6, cause: "cni del" }]);
    expect(await store.attachment("net1", { containerID: "a", ifname: "eth0" })).toEqual([]);
    expect(await store.allocations({ podNamespace: "default", podName: "pod-a" })).toEqual([]);
    expect(await store.attachment("net1", { containerID: "c", ifname: "eth0" })).toEqual([again, record("fd00::9", "c")]);
    expect((await store.allocations({ node: "node-a" })).map((r) => `${r.ip} ${r.containerID}`)).toEqual(["10.0.0.2 c", "10.0.0.9 b", "fd00::9 c"]);
    // A key's only allocation gone, its address then another's.
    await store.commit([{ op: "release", record: record("10.0.0.9", "b"), cause: "cni del" }]);
    await store.commit([{ op: "allocate", record: record("10.0.0.9", "d") }]);
    expect(await store.attachment("net1", { containerID: "b", ifname: "eth0" })).toEqual([]);
    expect(await store.allocations({ containerID: "b" })).toEqual([]);
    expect(await store.allocations({ podNamespace: "default", podName: "pod-d" })).toEqual([record("10.0.0.9", "d")]);
    await store.close();
  }, 30_000);

  test("another node's pod starts in its own block wait unread, and every read their change could answer reads them first", async () => {
    const namespace = await freshNamespace(client);
    const { store: a, reported } = await openReportingStore(client, namespace, "node-a");
    const b = await openStore(client, namespace, "node-b");
    const of = (ip: string, containerID: string) => record(ip, containerID, { node: "node-b" });
    const attachment = (containerID: string) => a.attachment("net1", { containerID, ifname: "eth0" });
    await b.commit([{ op: "claim", block: { space: "net1", cidr: "10.0.0.0/26", node: "node-b" } }, { op: "allocate", record: of("10.0.0.2", "x1") }]);
    await waitFor(async () => (await a.allocations({})).length === 1, 5000, "node-a to read node-b's block");
    /** node-b's change as node-a's watch delivered it: waiting, unread. */
    const waits = async (changes: Change[]) => {
      await b.commit(changes);
      await waitFor(() => a.cache.waitingBlocks === 1, 5000, "node-b's change to wait in node-a's cache");
    };
    await waits([{ op: "allocate", record: of("10.0.0.3", "x2") }]);
    expect(await attachment("unrelated")).toEqual([]);
    expect(a.cache.waitingBlocks).toBe(1); // a lookup the change cannot answer reads nothing
    expect(await attachment("x2")).toEqual([of("10.0.0.3", "x2")]); // its text holds the container
    expect(a.cache.waitingBlocks).toBe(0);
    await waits([{ op: "release", record: of("10.0.0.2", "x1"), cause: "cni del" }]);
    expect(await a.allocations({ containerID: "x1" })).toEqual([]); // the version read lists it
    await waits([{ op: "allocate", record: of("10.0.0.4", "x3") }]);
    expect((await a.allocations({ node: "node-b" })).map((r) => r.containerID)).toEqual(["x2", "x3"]);
    await waits([{ op: "allocate", record: of("10.0.0.5", "x4") }]);
    expect((await a.allocations({ podNamespace: "default", podName: "pod-x4" })).map((r) => r.ip)).toEqual(["10.0.0.5"]);
    await waits([{ op: "allocate", record: of("10.0.0.6", "x5") }]);
    const taken: string[] = [];
    await a.forEachTaken((_space, _family, ip) => taken.push(ip));
    expect(taken).toEqual(["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]); // a read of the space
    // A change to anything but the lines (a hold) is read at once.
    await b.commit([{ op: "hold", hold: { space: "net1", family: 4, ip: "10.0.0.9", kind: "reserved", until: null, pod: null } }]);
    const held = (await client.get(IPAMBlocks, blockName("net1", "10.0.0.0/26"), { namespace })) as IPAMBlock;
    await waitFor(() => !!a.cache.at(held.metadata.name!, held.metadata.resourceVersion!), 5000, "node-a to read the hold's version");
    expect(a.cache.waitingBlocks).toBe(0);
    // Lines edited by hand into something unreadable: reported when read, and left out.
    await client.transport.request("PUT", resourcePath(IPAMBlocks, { namespace, name: held.metadata.name! }), {
      body: { apiVersion: "ipamd.io/v1alpha1", kind: "IPAMBlock", metadata: held.metadata, spec: { ...blockSpecWire(held.spec), allocations: "10.0.0.3 not an entry" } },
    });
    await waitFor(() => a.cache.waitingBlocks === 1, 5000, "the edit to wait in node-a's cache");
    expect(reported).toEqual([]);
    expect(await a.allocations({})).toEqual([]);
    expect(reported).toEqual([expect.stringContaining(held.metadata.name!)]);
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  test("a write the watch shows landed settles its commit before its answer comes; the answer, late or lost, changes nothing", async () => {
    const namespace = await freshNamespace(client);
    const writes = hooked();
    const store = await openStore(writes, namespace, "node-a");
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "first") }]);
    let release!: () => void;
    writes.holdAnswers = new Promise((resolve) => (release = resolve));
    // The answer is held; the watch event of the write is not.
    await store.commit([{ op: "allocate", record: record("10.0.0.3", "second") }]);
    expect((await storedBlocks(client, namespace))[0]!.spec.allocations?.["10.0.0.3"]?.containerID).toBe("second");
    // Lost after all: the write is known to have landed, so its block is not read again.
    writes.after = () => {
      throw new KubeConnectionError("the answer was cut off (test)");
    };
    release();
    writes.holdAnswers = undefined;
    await Bun.sleep(100);
    writes.after = undefined;
    const gets = store.api.requests.get;
    await store.commit([{ op: "allocate", record: record("10.0.0.4", "third") }]);
    expect(store.api.requests.get).toBe(gets);
    expect((await store.allocations({})).map((r) => r.containerID)).toEqual(["first", "second", "third"]);
    await store.close();
  }, 30_000);

  test("the API server unreachable: a commit fails with 'try again later' (code 11) at once; reachable again, it works without a restart", async () => {
    const proxy = startTcpProxy(kube.url);
    const connection = { ...adminConnection(kube), server: proxy.url };
    const viaProxy = KubeClient.connect(connection, { timeoutMs: 2000 });
    const store = await openStore(viaProxy, await freshNamespace(client), "node-a");
    proxy.hold();
    const started = performance.now();
    await expect(store.commit(dual(0))).rejects.toMatchObject({ code: 11 });
    await expect(store.probe()).rejects.toMatchObject({ code: 11 });
    expect(performance.now() - started).toBeLessThan(3000);
    proxy.release();
    await store.commit(dual(1));
    expect((await store.allocations({})).map((r) => r.ip)).toEqual(["10.0.0.3", "fd00::3"]);
    await store.close();
  }, 30_000);
});
