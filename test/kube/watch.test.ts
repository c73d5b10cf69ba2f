/**
 * Watches on a real kube-apiserver: ordered events from a resourceVersion, the initial-events
 * stream and its end bookmark, progress bookmarks, 410 Gone once etcd has compacted the
 * version away, and objects that do not fit a schema. ConfigMaps bypass the watch cache here
 * (--watch-cache-sizes=configmaps#0), so their watches and continue tokens read etcd and a
 * compaction really expires them; Leases go through the watch cache, as most kinds do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { looseObject, object, string } from "valibot";
import { cleanup } from "../e2e/harness.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { GoneError } from "../../src/kube/errors.ts";
import { ConfigMaps, Leases, Namespaces, type ResourceType } from "../../src/kube/resources.ts";
import { ObjectMetaSchema } from "../../src/kube/schemas/meta.ts";
import type { WatchEvent } from "../../src/kube/watch.ts";
import type { KubeApiserver } from "./apiserver.ts";
import { compactEtcd, startWithAdmin, uniqueName } from "./helpers.ts";

afterAll(cleanup);

let kube: KubeApiserver;
let client: KubeClient;

beforeAll(async () => ({ kube, client } = await startWithAdmin({ args: ["--watch-cache-sizes=configmaps#0"] })), 120_000);

async function namespace(): Promise<string> {
  const name = uniqueName("watch");
  await client.create(Namespaces, { metadata: { name } });
  return name;
}

/** The events of one watch until `until` says stop (or the server ends it). */
async function collect<T>(events: AsyncGenerator<WatchEvent<T>>, until: (seen: WatchEvent<T>[]) => boolean): Promise<WatchEvent<T>[]> {
  const seen: WatchEvent<T>[] = [];
  for await (const event of events) {
    seen.push(event);
    if (until(seen)) break;
  }
  return seen;
}

describe("watch", () => {
  test("delivers ADDED, MODIFIED, DELETED in order after the resourceVersion it starts from", async () => {
    const ns = await namespace();
    const start = (await client.list(ConfigMaps, { namespace: ns })).resourceVersion;
    const created = await client.create(ConfigMaps, { metadata: { name: "a", namespace: ns }, data: { v: "1" } });
    await client.update(ConfigMaps, { ...created, data: { v: "2" } });
    await client.delete(ConfigMaps, "a", { namespace: ns });
    const events = await collect(client.watch(ConfigMaps, { namespace: ns, resourceVersion: start, timeoutSeconds: 30 }), (s) => s.length === 3);
    expect(events.map((e) => e.type)).toEqual(["ADDED", "MODIFIED", "DELETED"]);
    expect(events.map((e) => (e.type === "MODIFIED" ? e.object.data : null))).toEqual([null, { v: "2" }, null]);
    const versions = events.map((e) => Number(e.resourceVersion));
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(versions[0]).toBeGreaterThan(Number(start));
  });

  test("an object the caller holds at the event's version is taken from it (its own write's answer), never one of another version; the hook sees the event's copy", async () => {
    const ns = await namespace();
    const start = (await client.list(ConfigMaps, { namespace: ns })).resourceVersion;
    const created = await client.create(ConfigMaps, { metadata: { name: "a", namespace: ns }, data: { v: "1" } });
    const held = { ...created, data: { v: "held" } };
    await client.update(ConfigMaps, { ...created, data: { v: "2" } });
    const asked: string[] = [];
    const sent: unknown[] = [];
    const known = (key: { namespace: string | undefined; name: string }, resourceVersion: string, object: unknown) => {
      asked.push(`${key.namespace}/${key.name}@${resourceVersion}`);
      sent.push((object as { data?: unknown }).data);
      return resourceVersion === created.metadata.resourceVersion ? held : undefined;
    };
    const events = await collect(client.watch(ConfigMaps, { namespace: ns, resourceVersion: start, timeoutSeconds: 30, known }), (s) => s.length === 2);
    expect(events.map((e) => (e.type === "ADDED" || e.type === "MODIFIED" ? e.object.data : null))).toEqual([{ v: "held" }, { v: "2" }]);
    expect(asked).toEqual([`${ns}/a@${created.metadata.resourceVersion}`, `${ns}/a@${(events[1] as { resourceVersion: string }).resourceVersion}`]);
    // Each event's object as the server sent it, unchecked.
    expect(sent).toEqual([{ v: "1" }, { v: "2" }]);
  });

  test("sendInitialEvents streams the current objects, then a bookmark that marks their end", async () => {
    const ns = await namespace();
    for (const name of ["l1", "l2"]) await client.create(Leases, { metadata: { name, namespace: ns }, spec: { holderIdentity: name } });
    const events = await collect(client.watch(Leases, { namespace: ns, sendInitialEvents: true, timeoutSeconds: 30 }), (s) => s.at(-1)?.type === "BOOKMARK");
    expect(events.map((e) => (e.type === "ADDED" ? e.object.metadata.name : e.type)).sort()).toEqual(["BOOKMARK", "l1", "l2"]);
    expect(events.at(-1)).toMatchObject({ type: "BOOKMARK", initialEventsEnd: true });
  });

  test("bookmarks move a quiet watch's resourceVersion forward while other objects of the kind change", async () => {
    const [quiet, busy] = [await namespace(), await namespace()];
    const start = (await client.list(Leases, { namespace: quiet })).resourceVersion;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await client.create(Leases, { metadata: { name: `busy-${i}`, namespace: busy } });
        await Bun.sleep(50); // pacing of the background writes, not a wait for anything
      }
    })();
    // The watch cache sends a bookmark at the latest 2 s before the watch's deadline.
    const events = await collect(client.watch(Leases, { namespace: quiet, resourceVersion: start, timeoutSeconds: 5 }), (s) => s.some((e) => e.type === "BOOKMARK"));
    writing = false;
    await writer;
    const later = await client.create(Leases, { metadata: { name: "after-the-bookmark", namespace: busy } });
    const bookmark = events.find((e) => e.type === "BOOKMARK");
    expect(events.filter((e) => e.type !== "BOOKMARK")).toEqual([]);
    expect(bookmark).toBeDefined();
    expect(Number(bookmark!.resourceVersion)).toBeGreaterThan(Number(start));
    expect(Number(bookmark!.resourceVersion)).toBeLessThan(Number(later.metadata.resourceVersion));
  }, 15_000);

  test("a version etcd compacted away is a GoneError; so is a stale continue token, which listAll starts over from", async () => {
    const ns = await namespace();
    const start = (await client.list(ConfigMaps, { namespace: ns })).resourceVersion;
    for (const name of ["c1", "c2", "c3"]) await client.create(ConfigMaps, { metadata: { name, namespace: ns } });
    const firstPage = await client.list(ConfigMaps, { namespace: ns, limit: 1 });
    await client.create(ConfigMaps, { metadata: { name: "c4", namespace: ns } });
    await compactEtcd(kube);

    const watchError = await collect(client.watch(ConfigMaps, { namespace: ns, resourceVersion: start }), () => true).then(() => null, (e) => e);
    expect(watchError).toBeInstanceOf(GoneError);
    expect(watchError).toMatchObject({ code: 410, reason: "Expired" });
    const pageError = await client.list(ConfigMaps, { namespace: ns, limit: 1, continue: firstPage.continue }).then(() => null, (e) => e);
    expect(pageError).toBeInstanceOf(GoneError);
    const all = await client.listAll(ConfigMaps, { namespace: ns, pageSize: 1 });
    expect(all.items.map((c) => c.metadata.name)).toEqual(["c1", "c2", "c3", "c4"]);
  });

  test("an object that does not fit the schema is an INVALID event with its key, and the watch goes on", async () => {
    const ns = await namespace();
    const Owned: ResourceType = { ...ConfigMaps, schema: looseObject({ metadata: ObjectMetaSchema, data: object({ owner: string() }) }) };
    const start = (await client.list(Owned, { namespace: ns })).resourceVersion;
    await client.create(ConfigMaps, { metadata: { name: "odd", namespace: ns }, data: { x: "1" } });
    await client.create(ConfigMaps, { metadata: { name: "fine", namespace: ns }, data: { owner: "ipamd" } });
    const events = await collect(client.watch(Owned, { namespace: ns, resourceVersion: start, timeoutSeconds: 30 }), (s) => s.length === 2);
    expect(events[0]).toMatchObject({ type: "INVALID", eventType: "ADDED", namespace: ns, name: "odd" });
    expect((events[0] as { message: string }).message).toContain("data.owner");
    expect(events[1]).toMatchObject({ type: "ADDED", object: { metadata: { name: "fine" } } });
  });
});
