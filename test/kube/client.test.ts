/**
 * The client against a real kube-apiserver: typed reads and writes, the typed errors a caller
 * branches on, dry run, server-side apply between field managers, optimistic updates with
 * conflict retry under two concurrent writers, paginated lists, and server data that does not
 * fit a schema. One API server for the file; every test works in its own objects.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { looseObject, object, string } from "valibot";
import { cleanup, freePort } from "../e2e/harness.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { modify, retryOnConflict } from "../../src/kube/conflict.ts";
import {
  AlreadyExistsError, ConflictError, ForbiddenError, InvalidError, KubeApiError, KubeConnectionError, KubeInvalidResponseError, NotFoundError, UnauthorizedError,
} from "../../src/kube/errors.ts";
import { ConfigMaps, Namespaces, type ResourceType } from "../../src/kube/resources.ts";
import { ObjectMetaSchema } from "../../src/kube/schemas/meta.ts";
import type { KubeApiserver } from "./apiserver.ts";
import { startWithAdmin, uniqueName } from "./helpers.ts";

afterAll(cleanup);

const NS = "client-test";
let kube: KubeApiserver;
let client: KubeClient;

beforeAll(async () => ({ kube, client } = await startWithAdmin({}, [NS])), 120_000);

/** What a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to fail, it succeeded");
}

describe("reads and writes", () => {
  test("create, get, optimistic update and delete with preconditions, each failure a typed error", async () => {
    const name = uniqueName("cm");
    const created = await client.create(ConfigMaps, { metadata: { name, namespace: NS }, data: { a: "1" } });
    expect(created.metadata.uid).toBeString();
    expect(created.data).toEqual({ a: "1" });
    const read = await client.get(ConfigMaps, name, { namespace: NS });
    expect(read.metadata.resourceVersion).toBe(created.metadata.resourceVersion!);

    const updated = await client.update(ConfigMaps, { ...read, data: { a: "2" } });
    expect(updated.data).toEqual({ a: "2" });
    expect(updated.metadata.resourceVersion).not.toBe(read.metadata.resourceVersion!);
    const stale = await rejection(client.update(ConfigMaps, { ...read, data: { a: "3" } }));
    expect(stale).toBeInstanceOf(ConflictError);
    expect({ code: (stale as KubeApiError).code, reason: (stale as KubeApiError).reason }).toEqual({ code: 409, reason: "Conflict" });

    const again = await rejection(client.create(ConfigMaps, { metadata: { name, namespace: NS } }));
    expect(again).toBeInstanceOf(AlreadyExistsError);
    expect((again as KubeApiError).code).toBe(409);

    expect(await rejection(client.delete(ConfigMaps, name, { namespace: NS, preconditions: { uid: crypto.randomUUID() } }))).toBeInstanceOf(ConflictError);
    expect(await rejection(client.delete(ConfigMaps, name, { namespace: NS, preconditions: { resourceVersion: read.metadata.resourceVersion! } }))).toBeInstanceOf(ConflictError);
    await client.delete(ConfigMaps, name, { namespace: NS, preconditions: { uid: created.metadata.uid!, resourceVersion: updated.metadata.resourceVersion! } });
    const gone = await rejection(client.get(ConfigMaps, name, { namespace: NS }));
    expect(gone).toBeInstanceOf(NotFoundError);
    expect({ code: (gone as KubeApiError).code, reason: (gone as KubeApiError).reason }).toEqual({ code: 404, reason: "NotFound" });
    expect(await rejection(client.delete(ConfigMaps, name, { namespace: NS }))).toBeInstanceOf(NotFoundError);
  });

  test("a write's answer the caller knows is taken as it holds it; one it does not know is checked against the schema", async () => {
    const name = uniqueName("cm");
    const seen: unknown[] = [];
    const mine = { metadata: { name, namespace: NS }, data: { a: "held" } };
    const created = await client.create(ConfigMaps, { metadata: { name, namespace: NS }, data: { a: "1" } }, { known: (answer) => (seen.push(answer), mine as never) });
    expect(created).toBe(mine as never);
    // The answer as the server sent it, unchecked: the stored object.
    expect(seen).toMatchObject([{ kind: "ConfigMap", metadata: { name }, data: { a: "1" } }]);
    const read = await client.get(ConfigMaps, name, { namespace: NS });
    const updated = await client.update(ConfigMaps, { ...read, data: { a: "2" } }, { known: () => undefined });
    expect(updated.data).toEqual({ a: "2" });
    expect(updated.metadata.resourceVersion).not.toBe(read.metadata.resourceVersion!);
    await client.delete(ConfigMaps, name, { namespace: NS });
  });

  test("a dry run is validated and answered but stores nothing; an invalid object is refused with its causes", async () => {
    const name = uniqueName("dry");
    const answer = await client.create(ConfigMaps, { metadata: { name, namespace: NS }, data: { k: "v" } }, { dryRun: true });
    expect(answer.metadata.name).toBe(name);
    expect(await rejection(client.get(ConfigMaps, name, { namespace: NS }))).toBeInstanceOf(NotFoundError);

    const invalid = await rejection(client.create(ConfigMaps, { metadata: { name: "Not_A_Name", namespace: NS } }, { dryRun: true }));
    expect(invalid).toBeInstanceOf(InvalidError);
    expect((invalid as KubeApiError).code).toBe(422);
    expect((invalid as KubeApiError).status?.details?.causes?.[0]?.field).toBe("metadata.name");
  });

  test("server-side apply: each manager owns its fields; another's change is a Conflict unless forced", async () => {
    const name = uniqueName("ssa");
    const cm = (data: Record<string, string>) => ({ metadata: { name, namespace: NS }, data });
    await client.apply(ConfigMaps, cm({ a: "1" }), { fieldManager: "alice" });
    const both = await client.apply(ConfigMaps, cm({ a: "1", b: "2" }), { fieldManager: "alice" });
    expect(both.data).toEqual({ a: "1", b: "2" });

    const contested = await rejection(client.apply(ConfigMaps, cm({ a: "bob" }), { fieldManager: "bob" }));
    expect(contested).toBeInstanceOf(ConflictError);
    expect(contested.message).toContain("alice");
    const forced = await client.apply(ConfigMaps, cm({ a: "bob" }), { fieldManager: "bob", force: true });
    expect(forced.data).toEqual({ a: "bob", b: "2" });

    // alice now owns only b: applying without b removes it, and leaves bob's a alone.
    const dropped = await client.apply(ConfigMaps, cm({}), { fieldManager: "alice" });
    expect(dropped.data).toEqual({ a: "bob" });
    // A dry-run apply answers the merge without storing it.
    const preview = await client.apply(ConfigMaps, cm({ c: "3" }), { fieldManager: "carol", dryRun: true });
    expect(preview.data).toEqual({ a: "bob", c: "3" });
    expect((await client.get(ConfigMaps, name, { namespace: NS })).data).toEqual({ a: "bob" });
  });
});

describe("optimistic concurrency", () => {
  test("two concurrent updaters with conflict retry: every increment lands, and they did collide", async () => {
    const name = uniqueName("counter");
    await client.create(ConfigMaps, { metadata: { name, namespace: NS }, data: { count: "0" } });
    let conflicts = 0;
    // Both first reads happen before either write, so the first round must collide once.
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => (release = resolve));
    const firstRound = async () =>
      retryOnConflict(async () => {
        const current = await client.get(ConfigMaps, name, { namespace: NS });
        if (++arrived === 2) release();
        await bothRead;
        return client.update(ConfigMaps, { ...current, data: { count: String(Number(current.data?.count) + 1) } });
      }, { onConflict: () => conflicts++ });
    const increments = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await modify(client, ConfigMaps, name, (cm) => ({ ...cm, data: { count: String(Number(cm.data?.count) + 1) } }), {
          namespace: NS, attempts: 100, onConflict: () => conflicts++,
        });
      }
    };
    await Promise.all([firstRound().then(() => increments(24)), firstRound().then(() => increments(24))]);
    expect((await client.get(ConfigMaps, name, { namespace: NS })).data?.count).toBe("50");
    expect(conflicts).toBeGreaterThanOrEqual(1);
    console.log(`50 increments by two writers: ${conflicts} conflicts retried`);
  });

  test("retryOnConflict gives up after its attempts with the last Conflict, and passes other errors through at once", async () => {
    let calls = 0;
    const conflict = () => new ConflictError(409, "Conflict", "always");
    expect(await rejection(retryOnConflict(async () => { calls++; throw conflict(); }, { attempts: 3, backoffMs: 1 }))).toBeInstanceOf(ConflictError);
    expect(calls).toBe(3);
    calls = 0;
    expect(await rejection(retryOnConflict(async () => { calls++; throw new NotFoundError(404, "NotFound", "x"); }))).toBeInstanceOf(NotFoundError);
    expect(calls).toBe(1);
  });
});

describe("lists", () => {
  test("limit and continue page through every object once, at the first page's resourceVersion", async () => {
    // A namespace of its own and no selector: the server counts remainingItemCount only then.
    const ns = uniqueName("pages");
    await client.create(Namespaces, { metadata: { name: ns } });
    const names = Array.from({ length: 25 }, (_, i) => `p-${String(i).padStart(2, "0")}`);
    await Promise.all(names.map((name) => client.create(ConfigMaps, { metadata: { name, namespace: ns } })));

    const first = await client.list(ConfigMaps, { namespace: ns, limit: 10 });
    expect(first.items.length).toBe(10);
    expect(first.continue).toBeString();
    expect(first.remainingItemCount).toBe(15);
    // Created after the first page: a paged list is a snapshot, so it must not appear.
    await client.create(ConfigMaps, { metadata: { name: "p-late", namespace: ns } });
    const seen = first.items.map((c) => c.metadata.name);
    let page = first;
    while (page.continue) {
      page = await client.list(ConfigMaps, { namespace: ns, limit: 10, continue: page.continue });
      expect(page.resourceVersion).toBe(first.resourceVersion);
      seen.push(...page.items.map((c) => c.metadata.name));
    }
    expect(seen).toEqual(names);

    const all = await client.listAll(ConfigMaps, { namespace: ns, pageSize: 7 });
    expect(all.items.map((c) => c.metadata.name)).toEqual([...names, "p-late"]);
    expect(all.invalid).toEqual([]);
    const selected = await client.listAll(ConfigMaps, { namespace: ns, fieldSelector: "metadata.name=p-late", pageSize: 2 });
    expect(selected.items.map((c) => c.metadata.name)).toEqual(["p-late"]);
  });
});

describe("bad data and bad connections", () => {
  // ConfigMaps seen through a schema that demands data.owner: the server's objects are fine,
  // our expectations are not, exactly the situation of a newer or older server.
  const OwnedConfigMaps: ResourceType = { ...ConfigMaps, schema: looseObject({ metadata: ObjectMetaSchema, data: object({ owner: string() }) }) };

  test("objects that do not fit the schema are reported with their names, the rest still served", async () => {
    const ns = uniqueName("bad");
    await client.create(Namespaces, { metadata: { name: ns } });
    await client.create(ConfigMaps, { metadata: { name: "good", namespace: ns }, data: { owner: "ipamd" } });
    await client.create(ConfigMaps, { metadata: { name: "odd", namespace: ns }, data: { other: "x" } });
    const page = await client.list(OwnedConfigMaps, { namespace: ns });
    expect(page.items.map((c) => c.metadata.name)).toEqual(["good"]);
    expect(page.invalid.map((i) => ({ name: i.name, namespace: i.namespace }))).toEqual([{ name: "odd", namespace: ns }]);
    expect(page.invalid[0]!.message).toContain("data.owner");
    const error = await rejection(client.get(OwnedConfigMaps, "odd", { namespace: ns }));
    expect(error).toBeInstanceOf(KubeInvalidResponseError);
    expect(error.message).toContain("data.owner");
  });

  test("a wrong token is Unauthorized, no credentials Forbidden, no server or an untrusted one a connection error", async () => {
    const base = { server: kube.url, ca: kube.caPem, namespace: "default", source: "test" };
    const wrongToken = KubeClient.connect({ ...base, token: () => "not-a-token" });
    const unauthorized = await rejection(wrongToken.get(Namespaces, "default"));
    expect(unauthorized).toBeInstanceOf(UnauthorizedError);
    expect((unauthorized as KubeApiError).code).toBe(401);
    const anonymous = await rejection(KubeClient.connect(base).get(Namespaces, "default"));
    expect(anonymous).toBeInstanceOf(ForbiddenError);
    expect((anonymous as KubeApiError).code).toBe(403);

    const nobody = KubeClient.connect({ ...base, server: `https://127.0.0.1:${freePort()}`, token: () => kube.token });
    expect(await rejection(nobody.get(Namespaces, "default"))).toBeInstanceOf(KubeConnectionError);
    // Without our CA the server's certificate is not trusted: refused before any credentials are sent.
    const untrusted = KubeClient.connect({ ...base, ca: undefined, token: () => kube.token });
    const tls = await rejection(untrusted.get(Namespaces, "default"));
    expect(tls).toBeInstanceOf(KubeConnectionError);
    console.log(`untrusted server: ${tls.message}`);
  });
});
