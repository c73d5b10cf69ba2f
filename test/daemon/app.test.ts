import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type DaemonApp } from "../../src/daemon/app.ts";
import { Engine } from "../../src/engine/engine.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-app-"));
let n = 0;
let app: DaemonApp;
let store: SqliteStore;
const unexpected: unknown[] = [];

beforeEach(async () => {
  store = await SqliteStore.open(join(dir, `app-${n++}.db`));
  app = createApp(await Engine.start(store, { node: "node-a" }), { onUnexpectedError: (err) => unexpected.push(err) });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(unexpected).toEqual([]); // every failure in these tests is an expected, structured one
});

const ranges = [[{ subnet: "10.1.0.0/29" }], [{ subnet: "fd01::/120" }]];

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await app.request(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json" } });
  return { status: res.status, json: await res.json() };
}

const add = (containerID: string, more: Record<string, unknown> = {}) => post("/v1/cni/add", { network: "n1", containerID, ifname: "eth0", ranges, ...more });

describe("CNI routes", () => {
  test("ADD allocates one address per range set; ADD again returns the same", async () => {
    const first = await add("c1", { netns: "/var/run/netns/x", pod: { namespace: "default", name: "web-0", uid: "u1" } });
    expect(first).toEqual({
      status: 200,
      json: {
        ips: [
          { family: 4, address: "10.1.0.2", prefix: 29, gateway: "10.1.0.1" },
          { family: 6, address: "fd01::2", prefix: 120, gateway: "fd01::1" },
        ],
      },
    });
    expect(await add("c1")).toEqual(first);
    expect((await add("c2")).json.ips.map((ip: any) => ip.address)).toEqual(["10.1.0.3", "fd01::3"]);
    const [record] = await store.attachment("n1", { containerID: "c1", ifname: "eth0" });
    expect(record).toMatchObject({ netns: "/var/run/netns/x", podNamespace: "default", podName: "web-0", podUid: "u1", node: "node-a" });
  }, 30_000);

  test("exhaustion names the pool and its size, takes nothing from the other family, and DEL makes room", async () => {
    for (let i = 0; i < 5; i++) expect((await add(`c${i}`)).status).toBe(200);
    const full = await add("c5");
    expect(full.status).toBe(409);
    expect(full.json.code).toBe(100);
    expect(full.json.msg).toContain("range set 10.1.0.0/29");
    expect(full.json.msg).toContain("of network n1");
    expect(full.json.msg).toContain("all 5 addresses");
    // All or nothing: the IPv6 address picked before IPv4 failed was given back.
    const status = (await (await app.request("/v1/status")).json()) as { allocations: number };
    expect(status.allocations).toBe(10);
    expect((await post("/v1/cni/del", { network: "n1", containerID: "c0", ifname: "eth0" })).status).toBe(200);
    expect((await add("c5")).json.ips[0].address).toBe("10.1.0.2");
  }, 30_000);

  test("static addresses: granted when free, refused with a clear error when held by another", async () => {
    const mine = await add("c1", { requestedIps: ["10.1.0.5", "fd01::50"] });
    expect(mine.json.ips.map((ip: any) => ip.address)).toEqual(["10.1.0.5", "fd01::50"]);
    const clash = await add("c2", { requestedIps: ["10.1.0.5"] });
    expect(clash.status).toBe(409);
    expect(clash.json).toMatchObject({ code: 101, msg: expect.stringContaining("10.1.0.5 is already allocated") });
    const outside = await add("c3", { requestedIps: ["192.168.7.7"] });
    expect(outside.json).toMatchObject({ code: 102, msg: expect.stringContaining("not in any range") });
    const gateway = await add("c4", { requestedIps: ["10.1.0.1"] });
    expect(gateway.json.msg).toContain("gateway");
    // As host-local, a static reservation moves the cursor too: the next dynamic one follows it.
    expect((await add("c5")).json.ips[0].address).toBe("10.1.0.6");
    // and wrapping around steps over the static address.
    expect((await add("c6")).json.ips[0].address).toBe("10.1.0.2");
  }, 30_000);

  test("DEL of an unknown attachment succeeds; CHECK after DEL fails with code 3", async () => {
    expect((await post("/v1/cni/del", { network: "n1", containerID: "nobody", ifname: "eth0" })).status).toBe(200);
    await add("c1");
    expect((await post("/v1/cni/check", { network: "n1", containerID: "c1", ifname: "eth0" })).status).toBe(200);
    await post("/v1/cni/del", { network: "n1", containerID: "c1", ifname: "eth0" });
    const check = await post("/v1/cni/check", { network: "n1", containerID: "c1", ifname: "eth0" });
    expect(check.status).toBe(404);
    expect(check.json.code).toBe(3);
  }, 30_000);

  test("GC releases every attachment not listed as valid, and only in that network", async () => {
    await add("keep");
    await add("stale1");
    await add("stale2");
    await post("/v1/cni/add", { network: "other", containerID: "stale1", ifname: "eth0", ranges });
    const gc = await post("/v1/cni/gc", { network: "n1", validAttachments: [{ containerID: "keep", ifname: "eth0" }] });
    expect(gc.json.released.sort()).toEqual(["10.1.0.3", "10.1.0.4", "fd01::3", "fd01::4"]);
    expect((await post("/v1/cni/check", { network: "n1", containerID: "keep", ifname: "eth0" })).status).toBe(200);
    expect((await post("/v1/cni/check", { network: "other", containerID: "stale1", ifname: "eth0" })).status).toBe(200);
  }, 30_000);
});

describe("bad requests get structured errors and the daemon keeps serving", () => {
  test("not JSON → code 6", async () => {
    expect(await post("/v1/cni/add", "{nope")).toMatchObject({ status: 400, json: { code: 6 } });
  }, 30_000);
  test("wrong shape → code 7 naming the field", async () => {
    const res = await post("/v1/cni/add", { network: "n1", containerID: "c1", ifname: "eth0", ranges: "10.0.0.0/24" });
    expect(res).toMatchObject({ status: 400, json: { code: 7, msg: expect.stringContaining("ranges") } });
  }, 30_000);
  test("invalid ranges → code 7 with host-local's reason", async () => {
    const res = await post("/v1/cni/add", { network: "n1", containerID: "c1", ifname: "eth0", ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.9.0.1" }]] });
    expect(res.json).toMatchObject({ code: 7, msg: "rangeStart 10.9.0.1 not in network 10.0.0.0/24" });
  }, 30_000);
  test("interface name over 15 bytes → code 4 with the plugin's message (identifiers are CNI environment)", async () => {
    expect((await add("c1", { ifname: "a".repeat(16) })).json).toMatchObject({ code: 4, msg: `CNI_IFNAME "${"a".repeat(16)}" is longer than 15 bytes` });
  }, 30_000);
  test("body over 1 MiB → code 6", async () => {
    const res = await post("/v1/cni/add", JSON.stringify({ network: "n1", pad: "x".repeat(1 << 20) }));
    expect(res.json.code).toBe(6);
  }, 30_000);
  test("unknown endpoint → structured 404", async () => {
    const res = await app.request("/v1/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { msg: string }).msg).toContain("no such endpoint");
  }, 30_000);
  test("after all of that, ADD still works", async () => {
    await post("/v1/cni/add", "{nope");
    expect((await add("c1")).status).toBe(200);
  }, 30_000);
});

describe("restart", () => {
  test("a new service over the same store continues after the last address and keeps every allocation", async () => {
    const path = join(dir, "restart.db");
    let s = await SqliteStore.open(path);
    app = createApp(await Engine.start(s, { node: "node-a" }));
    await add("c1");
    await add("c2");
    await post("/v1/cni/del", { network: "n1", containerID: "c1", ifname: "eth0" });
    await s.close();
    s = await SqliteStore.open(path);
    app = createApp(await Engine.start(s, { node: "node-a" }));
    expect((await add("c2")).json.ips[0].address).toBe("10.1.0.3");
    expect((await add("c3")).json.ips[0].address).toBe("10.1.0.4"); // after the cursor, not the freed .2
    await s.close();
  }, 30_000);
});
