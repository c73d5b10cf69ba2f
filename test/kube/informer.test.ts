/**
 * The list+watch loop on a real kube-apiserver, through a loopback TCP proxy that can cut it
 * off like a network: it delivers every change, resumes watches that end or break from the
 * last version (no new list), lists again after a 410 and delivers what it missed as events,
 * comes back after the API server restarts, and drops objects that stop fitting the schema.
 * ConfigMaps bypass the watch cache (so etcd compaction expires their versions); Leases do not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { looseObject, object, string } from "valibot";
import { cleanup, waitFor } from "../e2e/harness.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { Informer, type InformerEvent, objectKey } from "../../src/kube/informer.ts";
import type { InvalidObject } from "../../src/kube/list.ts";
import { ConfigMaps, Leases, Namespaces, type ObjectOf, type ResourceType } from "../../src/kube/resources.ts";
import { ObjectMetaSchema } from "../../src/kube/schemas/meta.ts";
import { type KubeApiserver, startKubeApiserver } from "./apiserver.ts";
import { adminClient, adminConnection, compactEtcd, uniqueName } from "./helpers.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

afterAll(cleanup);

let kube: KubeApiserver;
let client: KubeClient;
let proxy: TcpProxy;
/** A client whose every connection goes through the proxy. */
let proxied: KubeClient;
const informers: Informer<ResourceType>[] = [];
afterAll(() => Promise.all(informers.map((i) => i.stop())));

beforeAll(async () => {
  kube = await startKubeApiserver({ args: ["--watch-cache-sizes=configmaps#0"] });
  client = adminClient(kube);
  proxy = startTcpProxy(kube.url);
  proxied = KubeClient.connect({ ...adminConnection(kube), server: proxy.url }, { timeoutMs: 5_000 });
}, 120_000);

async function namespace(): Promise<string> {
  const name = uniqueName("inf");
  await client.create(Namespaces, { metadata: { name } });
  return name;
}

/** An informer that records what it delivers; stopped after the file even if a test fails. */
function record<R extends ResourceType>(type: R, via: KubeClient, options: { namespace: string; watchTimeoutSeconds?: number; take?: (key: { name: string }) => boolean }) {
  const events: InformerEvent<ObjectOf<R>>[] = [];
  const invalid: InvalidObject[] = [];
  const errors: unknown[] = [];
  const informer = new Informer(via, type, {
    ...options,
    backoff: { initialMs: 20, maxMs: 200 },
    onEvent: (e) => events.push(e),
    onInvalid: (i) => invalid.push(i),
    onError: (e) => errors.push(e),
  }).start();
  informers.push(informer as unknown as Informer<ResourceType>);
  const said = (type: string, name: string) => events.some((e) => e.type === type && e.object.metadata.name === name);
  return { informer, events, invalid, errors, said };
}

/** The informer's copy against a fresh list from the server: names and versions. */
async function expectCopyMatchesServer<R extends ResourceType>(informer: Informer<R>, type: R, ns: string): Promise<void> {
  const server = await client.listAll(type, { namespace: ns });
  const view = (items: ObjectOf<R>[]) => items.map((o) => `${objectKey(o)}@${o.metadata.resourceVersion}`).sort();
  expect(view(informer.list())).toEqual(view(server.items));
}

describe("informer", () => {
  test("lists what exists, then delivers every change; its copy is the server's", async () => {
    const ns = await namespace();
    await client.create(ConfigMaps, { metadata: { name: "before", namespace: ns } });
    const { informer, events, said } = record(ConfigMaps, client, { namespace: ns });
    await informer.synced;
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["added before"]);
    const later = await client.create(ConfigMaps, { metadata: { name: "later", namespace: ns }, data: { v: "1" } });
    await client.update(ConfigMaps, { ...later, data: { v: "2" } });
    await client.delete(ConfigMaps, "before", { namespace: ns });
    await waitFor(() => said("deleted", "before") && said("modified", "later"), 10_000, "the changes to arrive");
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["added before", "added later", "modified later", "deleted before"]);
    expect(informer.get("later", ns)?.data).toEqual({ v: "2" });
    await expectCopyMatchesServer(informer, ConfigMaps, ns);
    expect(informer.stats).toMatchObject({ lists: 1, expired: 0 });
  });

  test("watches the server ends, and connections cut mid-stream, resume from the last version without a new list", async () => {
    const ns = await namespace();
    const { informer, said, errors } = record(Leases, proxied, { namespace: ns, watchTimeoutSeconds: 1 });
    await informer.synced;
    await waitFor(() => informer.stats.watches >= 3, 10_000, "three watches the server ended");
    await client.create(Leases, { metadata: { name: "after-timeouts", namespace: ns } });
    await waitFor(() => said("added", "after-timeouts"), 10_000, "the lease created after the timeouts");
    const connections = proxy.connections;
    proxy.cut();
    await client.create(Leases, { metadata: { name: "after-cut", namespace: ns } });
    await waitFor(() => said("added", "after-cut"), 10_000, "the lease created after the cut");
    expect(proxy.connections).toBeGreaterThan(connections);
    expect(informer.stats).toMatchObject({ lists: 1, expired: 0 });
    await expectCopyMatchesServer(informer, Leases, ns);
    console.log(`resumed: ${informer.stats.watches} watches, 1 list, ${errors.length} connection errors reported`);
  });

  test("after a 410 (etcd compacted while it was cut off) it lists again and delivers what it missed as events", async () => {
    const ns = await namespace();
    for (const name of ["stays", "goes", "changes"]) await client.create(ConfigMaps, { metadata: { name, namespace: ns } });
    const { informer, events, said } = record(ConfigMaps, proxied, { namespace: ns });
    await informer.synced;
    proxy.hold();
    await client.delete(ConfigMaps, "goes", { namespace: ns });
    const changes = await client.get(ConfigMaps, "changes", { namespace: ns });
    await client.update(ConfigMaps, { ...changes, data: { changed: "yes" } });
    await client.create(ConfigMaps, { metadata: { name: "new", namespace: ns } });
    await compactEtcd(kube);
    const before = events.length;
    proxy.release();
    await waitFor(() => informer.stats.lists === 2, 15_000, "the informer to list again");
    expect(informer.stats.expired).toBeGreaterThanOrEqual(1);
    expect(said("deleted", "goes") && said("modified", "changes") && said("added", "new")).toBe(true);
    expect(events.slice(before).map((e) => `${e.type} ${e.object.metadata.name}`).sort()).toEqual(["added new", "deleted goes", "modified changes"]);
    expect(informer.get("changes", ns)?.data).toEqual({ changed: "yes" });
    await expectCopyMatchesServer(informer, ConfigMaps, ns);
  });

  test("a change the consumer takes as it came is not delivered and leaves the copy's version; a re-list after a 410 delivers it", async () => {
    const ns = await namespace();
    const taken = await client.create(ConfigMaps, { metadata: { name: "taken", namespace: ns }, data: { v: "1" } });
    const { informer, events, said } = record(ConfigMaps, proxied, { namespace: ns, take: ({ name }) => name === "taken" });
    await informer.synced;
    const changed = await client.update(ConfigMaps, { ...taken, data: { v: "2" } });
    await client.create(ConfigMaps, { metadata: { name: "after", namespace: ns } });
    await waitFor(() => said("added", "after"), 10_000, "the change after the taken one");
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(["added taken", "added after"]);
    expect(informer.stats.taken).toBe(1);
    expect(informer.get("taken", ns)?.metadata.resourceVersion).toBe(taken.metadata.resourceVersion);
    proxy.hold();
    for (const name of ["while-held", "also-while-held"]) await client.create(ConfigMaps, { metadata: { name, namespace: ns } });
    await client.delete(ConfigMaps, "after", { namespace: ns });
    await compactEtcd(kube);
    proxy.release();
    await waitFor(() => said("modified", "taken"), 15_000, "the re-list to deliver the taken object");
    expect(said("added", "while-held")).toBe(true);
    // A deletion the re-list finds is reported as of the list's version, not the copy's.
    const deleted = events.find((e) => e.type === "deleted" && e.object.metadata.name === "after");
    expect(deleted?.type === "deleted" && BigInt(deleted.resourceVersion!) > BigInt(deleted.object.metadata.resourceVersion!)).toBe(true);
    expect(informer.stats.lists).toBe(2);
    expect(informer.get("taken", ns)?.metadata.resourceVersion).toBe(changed.metadata.resourceVersion);
  });

  test("across a restart of the API server it catches up and misses nothing, without replaying what did not change", async () => {
    const ns = await namespace();
    for (const name of ["old-1", "old-2"]) await client.create(Leases, { metadata: { name, namespace: ns } });
    const { informer, events, said } = record(Leases, client, { namespace: ns });
    await informer.synced;
    // SIGKILL: a crash. (SIGTERM with this watch open takes kube-apiserver over 10 s to exit.)
    await kube.restart("SIGKILL");
    await client.create(Leases, { metadata: { name: "after-restart", namespace: ns } });
    await client.delete(Leases, "old-2", { namespace: ns });
    await waitFor(() => said("added", "after-restart") && said("deleted", "old-2"), 30_000, "the changes after the restart");
    // Resumed, the watch delivers the two changes in order; re-listed after a 410, the
    // differences come deletions first. Either way: exactly these, nothing replayed.
    const seen = events.map((e) => `${e.type} ${e.object.metadata.name}`);
    expect(seen.slice(0, 2)).toEqual(["added old-1", "added old-2"]);
    expect(seen.slice(2).sort()).toEqual(["added after-restart", "deleted old-2"]);
    await expectCopyMatchesServer(informer, Leases, ns);
    console.log(`after restart: ${informer.stats.lists} lists, ${informer.stats.expired} expired (410), ${informer.stats.watches} watches`);
  }, 60_000);

  test("an object that stops fitting the schema is reported and leaves the copy as deleted", async () => {
    const ns = await namespace();
    const Owned = { ...ConfigMaps, schema: looseObject({ metadata: ObjectMetaSchema, data: object({ owner: string() }) }) } satisfies ResourceType;
    await client.create(ConfigMaps, { metadata: { name: "odd", namespace: ns }, data: {} });
    const fine = await client.create(ConfigMaps, { metadata: { name: "fine", namespace: ns }, data: { owner: "ipamd" } });
    const { informer, invalid, said } = record(Owned, client, { namespace: ns });
    await informer.synced;
    expect(informer.list().map((o) => o.metadata.name)).toEqual(["fine"]);
    expect(invalid.map((i) => i.name)).toEqual(["odd"]);
    await client.update(ConfigMaps, { ...fine, data: { nobody: "x" } });
    await waitFor(() => said("deleted", "fine"), 10_000, "the broken object to leave the copy");
    expect(invalid.map((i) => i.name)).toEqual(["odd", "fine"]);
    expect(informer.list()).toEqual([]);
  });
});
