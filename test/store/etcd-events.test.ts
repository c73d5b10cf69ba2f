/**
 * What an allocation costs etcd in keys: the events of one commit share one ev/ key, so a
 * group commit of N ADDs writes N × (a/, att/, n/, ip/ and two event index keys) + 1 keys, and
 * history reads them back event by event, beside single-event keys of layout 3.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { eventId, Layout } from "../../src/store/etcd/layout.ts";
import { cleanup } from "../e2e/harness.ts";
import { record } from "./contract/support.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
}, 30_000);
afterAll(cleanup);

/** How many keys of each kind (a, att, n, ip, ev, evi, …) are under the prefix. */
async function keysByKind(client: EtcdClient, prefix: string): Promise<Record<string, number>> {
  const kinds: Record<string, number> = {};
  for (const kv of await client.rangePrefix(prefix, { keysOnly: true })) {
    const kind = kv.key.slice(prefix.length).split("/")[0]!;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

describe("etcd: keys per allocation", () => {
  test("concurrent ADDs of one daemon write five keys apiece, one event key per transaction and their space's key once", async () => {
    const client = new EtcdClient(etcd.endpoints);
    const prefix = `/keys-${process.pid}/`;
    const store = new EtcdStore(client, prefix, "node-a");
    const before = client.requests;
    // ADDs without a pod name or a named pool, as in `make bench-cluster`: no pod/, evi/p or nsp/ keys.
    const adds = Array.from({ length: 24 }, (_, i) => record(`10.0.3.${i + 2}`, `c${i}`, { podNamespace: null, podName: null }));
    await Promise.all(adds.map((r) => store.commit([{ op: "cursor", rangeSet: "net1|p", ip: r.ip }, { op: "allocate", record: r }])));
    const transactions = client.requests - before;
    // The first goes alone; the 23 queued behind it share the next transactions.
    expect(transactions).toBeLessThan(adds.length);
    expect(await keysByKind(client, prefix)).toEqual({ a: 24, att: 24, n: 24, evi: 48, cur: 1, ev: transactions, sp: 1 });
    const history = await store.history({ limit: 100 });
    expect(history.map((e) => e.ip).sort()).toEqual(adds.map((r) => r.ip).sort());
    expect(new Set(history.map((e) => e.id)).size).toBe(24);
  }, 30_000);

  test("one commit's events share a key; each is still found by address, container, pod and kind, and pruned with its index keys", async () => {
    const client = new EtcdClient(etcd.endpoints);
    const prefix = `/events-${process.pid}/`;
    const store = new EtcdStore(client, prefix, "node-a");
    await store.commit([
      { op: "allocate", record: record("10.0.4.2", "c1") },
      { op: "allocate", record: record("10.0.4.3", "c2", { static: true }) },
      { op: "allocate", record: record("10.0.4.4", "c3") },
    ]);
    expect((await keysByKind(client, prefix)).ev).toBe(1);
    const ids = (await store.history({})).map((e) => e.id);
    expect(new Set(ids).size).toBe(3);
    for (const [ip, containerID] of [["10.0.4.2", "c1"], ["10.0.4.3", "c2"], ["10.0.4.4", "c3"]] as const) {
      expect((await store.history({ ip })).map((e) => `${e.ip} ${e.containerID}`)).toEqual([`${ip} ${containerID}`]);
      expect((await store.history({ containerID })).map((e) => e.ip)).toEqual([ip]);
      expect((await store.history({ podNamespace: "default", podName: `pod-${containerID}` })).map((e) => e.ip)).toEqual([ip]);
    }
    expect((await store.history({ kind: "static" })).map((e) => e.ip)).toEqual(["10.0.4.3"]);
    // Paging through one key's events: each page picks up where the last stopped.
    const first = await store.history({ limit: 2 });
    const rest = await store.history({ before: { at: first[1]!.at, id: first[1]!.id } });
    expect([...first, ...rest].map((e) => e.id)).toEqual(ids);
    expect(await store.pruneHistory(Date.now() + 1)).toBe(3);
    const left = await keysByKind(client, prefix);
    expect({ ev: left.ev, evi: left.evi }).toEqual({ ev: undefined, evi: undefined });
  }, 30_000);

  test("a layout-3 daemon's single-event keys read back beside shared ones; its reader finds a shared key's first event where it looks", async () => {
    const client = new EtcdClient(etcd.endpoints);
    const prefix = `/mixed-${process.pid}/`;
    const L = new Layout(prefix);
    const store = new EtcdStore(client, prefix, "node-a");
    // As a daemon of layout 3 wrote it: one event per ev/ key, n 0, with its index keys.
    const old = { n: 0, at: 1_700_000_000_000, kind: "allocated", network: "net1", ip: "10.0.5.2", containerID: "old", ifname: "eth0", podNamespace: null, podName: null, podUid: null, cause: "cni add" } as const;
    const oldId = eventId(old.at, "node-b", 7);
    await client.txn([], [{ put: { key: L.event(oldId), value: JSON.stringify(old) } }, ...L.eventIndexes({ ...old, id: 0 }, oldId).map((key) => ({ put: { key, value: "" } }))]);
    await store.commit([
      { op: "allocate", record: record("10.0.5.3", "new1") },
      { op: "allocate", record: record("10.0.5.4", "new2") },
    ]);
    expect((await store.history({})).map((e) => e.containerID)).toEqual(["new2", "new1", "old"]);
    expect((await store.history({ ip: "10.0.5.2" })).map((e) => e.containerID)).toEqual(["old"]);
    // The shared key keeps its first event where layout 3 keeps its only one.
    const [shared] = (await client.rangePrefix(L.events())).filter((kv) => kv.key !== L.event(oldId));
    expect(JSON.parse(shared!.value)).toMatchObject({ n: 0, ip: "10.0.5.3", containerID: "new1", more: [{ n: 1, ip: "10.0.5.4", containerID: "new2" }] });
    expect(await store.pruneHistory(Date.now() + 1)).toBe(3);
    expect(await client.rangePrefix(`${prefix}ev`, { keysOnly: true })).toEqual([]);
  }, 30_000);
});
