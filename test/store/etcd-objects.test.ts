/**
 * The block store's objects on a real etcd (src/store/etcd-objects.ts): the requests the
 * store makes of the Kubernetes API, answered by etcd with the same meaning and errors
 * (compare-and-swap on resourceVersion, "already exists", "not found", a watch that resumes
 * from a version and says when that version is gone), then the whole Store contract on it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Informer, type Listing } from "../../src/kube/informer.ts";
import { AlreadyExistsError, ConflictError, GoneError, NotFoundError } from "../../src/kube/errors.ts";
import { IPAMBlocks, Leases } from "../../src/kube/resources.ts";
import type { IPAMBlock } from "../../src/kube/schemas/store.ts";
import type { WatchEvent } from "../../src/kube/watch.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdObjects } from "../../src/store/etcd-objects.ts";
import { KubeStore } from "../../src/store/kube.ts";
import { kindMissing, mayHaveApplied } from "../../src/store/kube/faults.ts";
import { StorageFault } from "../../src/store/storage-fault.ts";
import { cleanup, tempDir, waitFor } from "../e2e/harness.ts";
import { storeContract } from "./contract.ts";
import { reopenableTarget } from "./contract/support.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";
import { PREFIXES } from "./kube-env.ts";

let etcd: EtcdCluster;
let client: EtcdClient;
beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  client = new EtcdClient(etcd.endpoints, {}, 3000);
}, 30_000);
afterAll(cleanup);

let n = 0;
const fresh = () => new EtcdObjects(client, `/objects-${process.pid}-${n++}/`, etcd.endpoints.join(","));
const NS = "ipamd";
const block = (name: string, node = "node-a", labels?: Record<string, string>) => ({ metadata: { name, namespace: NS, ...(labels ? { labels } : {}) }, spec: { space: "net1", cidr: "10.0.0.0/26", node } });

/** Events of a watch until `count` have come (or 5 s pass). */
async function take(events: AsyncGenerator<WatchEvent<IPAMBlock>>, count: number): Promise<WatchEvent<IPAMBlock>[]> {
  const out: WatchEvent<IPAMBlock>[] = [];
  const deadline = setTimeout(() => void events.return(undefined), 5000);
  for await (const event of events) {
    if (event.type !== "BOOKMARK") out.push(event);
    if (out.length >= count) break;
  }
  clearTimeout(deadline);
  return out;
}

describe("objects on etcd", () => {
  test("create, then get at its version; a second create of the name is AlreadyExistsError", async () => {
    const objects = fresh();
    const created = await objects.create(IPAMBlocks, block("b1"));
    expect(created.spec.node).toBe("node-a");
    expect(Number(created.metadata.resourceVersion)).toBeGreaterThan(0);
    const read = await objects.get(IPAMBlocks, "b1", { namespace: NS });
    expect(read.metadata.resourceVersion).toBe(created.metadata.resourceVersion!);
    expect(read.metadata.uid).toBe(created.metadata.uid!);
    await expect(objects.create(IPAMBlocks, block("b1", "node-b"))).rejects.toBeInstanceOf(AlreadyExistsError);
    expect((await objects.get(IPAMBlocks, "b1", { namespace: NS })).spec.node).toBe("node-a");
  });

  test("update is a compare-and-swap on resourceVersion: a stale copy is ConflictError, a missing object NotFoundError naming it", async () => {
    const objects = fresh();
    const v1 = await objects.create(IPAMBlocks, block("b1"));
    const v2 = await objects.update(IPAMBlocks, { ...v1, spec: { ...v1.spec, node: "node-b" } });
    expect(Number(v2.metadata.resourceVersion)).toBeGreaterThan(Number(v1.metadata.resourceVersion));
    await expect(objects.update(IPAMBlocks, { ...v1, spec: { ...v1.spec, node: "node-c" } })).rejects.toBeInstanceOf(ConflictError);
    expect((await objects.get(IPAMBlocks, "b1", { namespace: NS })).spec.node).toBe("node-b");
    const missing = await objects.update(IPAMBlocks, { ...block("nope"), metadata: { ...block("nope").metadata, resourceVersion: "5" } }).catch((err) => err);
    expect(missing).toBeInstanceOf(NotFoundError);
    // An object that is not there, as opposed to a kind the server does not serve.
    expect(kindMissing(missing)).toBe(false);
    const gone = await objects.get(IPAMBlocks, "nope", { namespace: NS }).catch((err) => err);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(kindMissing(gone)).toBe(false);
  });

  test("delete honours its preconditions (uid, resourceVersion); deleting what is gone is NotFoundError", async () => {
    const objects = fresh();
    const v1 = await objects.create(IPAMBlocks, block("b1"));
    const v2 = await objects.update(IPAMBlocks, { ...v1, spec: { ...v1.spec, node: "node-b" } });
    await expect(objects.delete(IPAMBlocks, "b1", { namespace: NS, preconditions: { resourceVersion: v1.metadata.resourceVersion! } })).rejects.toBeInstanceOf(ConflictError);
    await expect(objects.delete(IPAMBlocks, "b1", { namespace: NS, preconditions: { uid: "etcd-1" } })).rejects.toBeInstanceOf(ConflictError);
    await objects.delete(IPAMBlocks, "b1", { namespace: NS, preconditions: { uid: v1.metadata.uid!, resourceVersion: v2.metadata.resourceVersion! } });
    await expect(objects.get(IPAMBlocks, "b1", { namespace: NS })).rejects.toBeInstanceOf(NotFoundError);
    await expect(objects.delete(IPAMBlocks, "b1", { namespace: NS })).rejects.toBeInstanceOf(NotFoundError);
    // A new object of the same name is another object: the old uid does not delete it.
    await objects.create(IPAMBlocks, block("b1"));
    await expect(objects.delete(IPAMBlocks, "b1", { namespace: NS, preconditions: { uid: v1.metadata.uid! } })).rejects.toBeInstanceOf(ConflictError);
  });

  test("list: one namespace and kind at one version, by label; an object ipamd cannot read is listed as invalid, not dropped silently", async () => {
    const objects = fresh();
    await objects.create(IPAMBlocks, block("b1", "node-a", { role: "x" }));
    const last = await objects.create(IPAMBlocks, block("b2", "node-b"));
    await objects.create(IPAMBlocks, { ...block("b3"), metadata: { name: "b3", namespace: "other" } });
    await objects.create(Leases, { metadata: { name: "l1", namespace: NS }, spec: { holderIdentity: "node-a" } });
    const page = await objects.listAll(IPAMBlocks, { namespace: NS });
    expect(page.items.map((b) => b.metadata.name)).toEqual(["b1", "b2"]);
    expect(Number(page.resourceVersion)).toBeGreaterThanOrEqual(Number(last.metadata.resourceVersion) + 2);
    expect((await objects.list(IPAMBlocks, { namespace: NS, labelSelector: "role=x" })).items.map((b) => b.metadata.name)).toEqual(["b1"]);
    expect((await objects.list(IPAMBlocks, { namespace: NS, limit: 1 })).items).toHaveLength(1);
    await expect(objects.list(IPAMBlocks, { namespace: NS, labelSelector: "role in (x)" })).rejects.toThrow(/only key=value/);
    // Written by hand into a shape ipamd does not write.
    await client.put(`/objects-${process.pid}-${n - 1}/ipamblocks/${NS}/bad`, JSON.stringify({ metadata: { name: "bad", namespace: NS }, spec: { cidr: 5 } }));
    const again = await objects.listAll(IPAMBlocks, { namespace: NS });
    expect(again.items).toHaveLength(2);
    expect(again.invalid.map((i) => i.name)).toEqual(["bad"]);
  });

  test("a list is read a page at a time, every page at the first one's revision: one consistent read", async () => {
    const prefix = `/pages-${process.pid}-${n++}/`;
    for (let i = 0; i < 10; i++) await client.put(`${prefix}k${i}`, String(i));
    /** A client that writes a key the list has not reached yet, right after its first page. */
    class Interleaving extends EtcdClient {
      pages = 0;
      override async call(...args: Parameters<EtcdClient["call"]>) {
        const answer = await super.call(...args);
        if (args[0] === "/v3/kv/range" && ++this.pages === 1) await client.put(`${prefix}k99`, "late");
        return answer;
      }
    }
    const paging = new Interleaving(etcd.endpoints, {}, 3000);
    const { kvs, revision } = await paging.rangePrefixAt(prefix, undefined, 3);
    expect(kvs.map((kv) => kv.value)).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(paging.pages).toBe(4);
    expect((await client.rangePrefixAt(prefix)).revision).toBeGreaterThan(revision);
    expect((await paging.rangePrefixAt(prefix, 4, 3)).kvs.map((kv) => kv.value)).toEqual(["0", "1", "2", "3"]);
  });

  test("a watch from a list's version sees every later change in order, with the versions the objects then had", async () => {
    const objects = fresh();
    await objects.create(IPAMBlocks, block("b0"));
    const page = await objects.listAll(IPAMBlocks, { namespace: NS });
    const events = objects.watch(IPAMBlocks, { namespace: NS, resourceVersion: page.resourceVersion });
    const seen = take(events, 4);
    const b1 = await objects.create(IPAMBlocks, block("b1"));
    const b1b = await objects.update(IPAMBlocks, { ...b1, spec: { ...b1.spec, node: "node-b" } });
    await objects.delete(IPAMBlocks, "b0", { namespace: NS });
    // Another kind and another namespace are not this watch's.
    await objects.create(Leases, { metadata: { name: "l1", namespace: NS }, spec: {} });
    await objects.create(IPAMBlocks, { ...block("x"), metadata: { name: "x", namespace: "other" } });
    const b2 = await objects.create(IPAMBlocks, block("b2"));
    const got = await seen;
    expect(got.map((e) => [e.type, "object" in e ? e.object.metadata.name : "", e.resourceVersion])).toEqual([
      ["ADDED", "b1", b1.metadata.resourceVersion!],
      ["MODIFIED", "b1", b1b.metadata.resourceVersion!],
      ["DELETED", "b0", expect.any(String)],
      ["ADDED", "b2", b2.metadata.resourceVersion!],
    ]);
    expect((got[1] as { object: IPAMBlock }).object.spec.node).toBe("node-b");
  });

  test("a watch asks the caller first: an object it holds is not read again, a change it takes is not read at all", async () => {
    const objects = fresh();
    const page = await objects.listAll(IPAMBlocks, { namespace: NS });
    const held = { ...block("b1"), metadata: { name: "b1", namespace: NS, resourceVersion: "held" } } as IPAMBlock;
    const events = objects.watch(IPAMBlocks, { namespace: NS, resourceVersion: page.resourceVersion, known: ({ name }) => (name === "b1" ? held : undefined), take: ({ name }) => name === "b2" });
    const seen = take(events, 3);
    await objects.create(IPAMBlocks, block("b1"));
    const b2 = await objects.create(IPAMBlocks, block("b2"));
    await objects.update(IPAMBlocks, { ...b2, spec: { ...b2.spec, node: "node-c" } });
    const got = await seen;
    expect(got[0]).toMatchObject({ type: "ADDED", object: held });
    expect(got[1]).toMatchObject({ type: "ADDED", object: { metadata: { name: "b2" } } });
    expect(got[2]).toMatchObject({ type: "TAKEN", name: "b2" });
  });

  test("a watch from a version etcd has compacted away is GoneError, and an informer lists again and goes on", async () => {
    // A watch that hears nothing for a second ends (etcd's own notices come every ten minutes).
    const objects = new EtcdObjects(client, `/objects-${process.pid}-${n++}/`, etcd.endpoints.join(","), undefined, 1000);
    const first = await objects.create(IPAMBlocks, block("b1"));
    const later = await objects.update(IPAMBlocks, { ...first, spec: { ...first.spec, node: "node-b" } });
    await client.call("/v3/kv/compaction", { revision: later.metadata.resourceVersion, physical: true });
    await expect(take(objects.watch(IPAMBlocks, { namespace: NS, resourceVersion: String(Number(first.metadata.resourceVersion) - 1) }), 1)).rejects.toBeInstanceOf(GoneError);

    // An informer whose watch resumes from a version compacted meanwhile is told so, lists again and goes on.
    let gate: Promise<void> | undefined;
    const paused: Listing = {
      listAll: (type, options) => objects.listAll(type, options),
      watch: (type, options) => (async function* () {
        await gate;
        yield* objects.watch(type, options);
      })(),
    };
    const informer = new Informer(paused, IPAMBlocks, { namespace: NS });
    informer.start();
    try {
      await informer.synced;
      expect(informer.get("b1", NS)?.spec.node).toBe("node-b");
      let resume = () => {};
      gate = new Promise((resolve) => (resume = resolve));
      await Bun.sleep(1500); // its watch falls silent and ends; the next waits at the gate
      await objects.create(IPAMBlocks, block("b2"));
      const b3 = await objects.create(IPAMBlocks, block("b3"));
      await client.call("/v3/kv/compaction", { revision: b3.metadata.resourceVersion, physical: true });
      resume();
      await waitFor(() => informer.get("b3", NS) !== undefined && informer.get("b2", NS) !== undefined, 5000, "the informer to see b2 and b3");
      expect(informer.stats.expired).toBe(1);
      expect(informer.stats.lists).toBe(2);
    } finally {
      await informer.stop();
    }
  });

  test("writes compact etcd's revisions once they are compactAfterMs old: a watch from before then is GoneError, the objects stay", async () => {
    const objects = new EtcdObjects(client, `/objects-${process.pid}-${n++}/`, etcd.endpoints.join(","), 300);
    const first = await objects.create(IPAMBlocks, block("b1"));
    let last = first;
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(350);
      last = await objects.update(IPAMBlocks, { ...last, spec: { ...last.spec, node: `node-${i}` } });
    }
    // Each write after the first compacted up to the one before it.
    await waitFor(async () => take(objects.watch(IPAMBlocks, { namespace: NS, resourceVersion: first.metadata.resourceVersion! }), 1).then(() => false, (err) => err instanceof GoneError), 5000, "the first writes' revisions to be compacted");
    expect((await objects.get(IPAMBlocks, "b1", { namespace: NS })).spec.node).toBe("node-2");
  });

  test("a write sent twice (its first answer lost): found done if it stands, unconfirmed if another write came after it", async () => {
    /** A client whose transactions go out twice, the first answer lost, as when a member dies before answering. */
    class Resending extends EtcdClient {
      between: (() => Promise<unknown>) | undefined;
      override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
        await super.txn(...args);
        await this.between?.();
        return { ...(await super.txn(...args)), sends: 2 };
      }
    }
    const resending = new Resending(etcd.endpoints, {}, 3000);
    const prefix = `/objects-${process.pid}-${n++}/`;
    const objects = new EtcdObjects(resending, prefix, etcd.endpoints.join(","));
    const direct = new EtcdObjects(client, prefix, etcd.endpoints.join(","));
    const v1 = await objects.create(IPAMBlocks, block("b1"));
    expect(v1.spec.node).toBe("node-a");
    const v2 = await objects.update(IPAMBlocks, { ...v1, spec: { ...v1.spec, node: "node-b" } });
    expect((await direct.get(IPAMBlocks, "b1", { namespace: NS })).metadata.resourceVersion).toBe(v2.metadata.resourceVersion!);
    // Another daemon writes between the two attempts: the write did land, but is not the block's last.
    resending.between = async () => {
      const now = await direct.get(IPAMBlocks, "b1", { namespace: NS });
      await direct.update(IPAMBlocks, { ...now, spec: { ...now.spec, node: "node-z" } });
    };
    const doubt = await objects.update(IPAMBlocks, { ...v2, spec: { ...v2.spec, node: "node-c" } }).catch((err) => err);
    expect(doubt).toBeInstanceOf(StorageFault);
    expect(mayHaveApplied(doubt)).toBe(true);
    resending.between = undefined;
    await objects.delete(IPAMBlocks, "b1", { namespace: NS });
    await expect(direct.get(IPAMBlocks, "b1", { namespace: NS })).rejects.toBeInstanceOf(NotFoundError);
  });

  test("etcd that cannot be reached: reads and writes fail as storage faults (11); a write's may have applied", async () => {
    const objects = new EtcdObjects(new EtcdClient(["http://127.0.0.1:9"], {}, 300), "/unreachable/", "http://127.0.0.1:9");
    const read = await objects.get(IPAMBlocks, "b1", { namespace: NS }).catch((err) => err);
    expect(read).toBeInstanceOf(StorageFault);
    expect(read.code).toBe(11);
    expect(mayHaveApplied(read)).toBe(false);
    const write = await objects.create(IPAMBlocks, block("b1")).catch((err) => err);
    expect(write).toBeInstanceOf(StorageFault);
    expect(write.code).toBe(11);
    expect(mayHaveApplied(write)).toBe(true);
  });
});

const open = (prefix: string, db: string) => KubeStore.open({ client: new EtcdObjects(new EtcdClient(etcd.endpoints, {}, 3000), prefix, etcd.endpoints.join(",")), namespace: NS, node: "", db, blockPrefixes: PREFIXES });

// Each store under a prefix of its own, its local database kept across a reopen.
storeContract(
  "blocks on etcd",
  reopenableTarget(async () => `/contract-blocks-${process.pid}-${n++}/`, open, () => join(tempDir("ipamd-contract-"), "local.db")),
);
