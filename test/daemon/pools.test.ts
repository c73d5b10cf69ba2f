/** Named pools through the daemon's routes: sharing, node subnets, cooldown, sticky, orphans, reports. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type DaemonApp } from "../../src/daemon/app.ts";
import { Engine } from "../../src/engine/engine.ts";
import { compilePools, type NamedPoolInput } from "../../src/ipam/named-pool.ts";
import type { PoolReport } from "../../src/protocol-admin.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-pools-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

interface Daemon {
  app: DaemonApp;
  ipam: Engine;
  store: SqliteStore;
  clock: { now: number };
  path: string;
}

async function daemon(pools: Record<string, NamedPoolInput>, options: { path?: string; node?: string; clock?: { now: number } } = {}): Promise<Daemon> {
  const path = options.path ?? join(dir, `pools-${n++}.db`);
  const store = await SqliteStore.open(path);
  const clock = options.clock ?? { now: 1_000_000 };
  const ipam = await Engine.start(store, { node: options.node ?? "node-a", pools: compilePools(pools), now: () => clock.now });
  return { app: createApp(ipam), ipam, store, clock, path };
}

async function call(d: Daemon, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await d.app.request(path, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const add = (d: Daemon, containerID: string, more: Record<string, unknown> = {}) =>
  call(d, "/v1/cni/add", { network: "net1", containerID, ifname: "eth0", pools: ["v4"], ...more });
const del = (d: Daemon, containerID: string, network = "net1") => call(d, "/v1/cni/del", { network, containerID, ifname: "eth0" });
const addresses = (r: { json: any }) => r.json.ips?.map((ip: any) => `${ip.address}/${ip.prefix}${ip.gateway ? ` via ${ip.gateway}` : ""}`);
const report = async (d: Daemon, name: string): Promise<PoolReport> => (await call(d, "/v1/pools")).json.pools.find((p: PoolReport) => p.name === name);

describe("named pools", () => {
  test("a pool is one address space shared by every network that selects it; dual-stack with two pools", async () => {
    const d = await daemon({
      v4: { addresses: ["10.60.0.10-10.60.0.12"], prefix: 24, gateway: "10.60.0.1" },
      v6: { addresses: ["fd60::/120"], prefix: 120, gateway: "fd60::1" },
    });
    expect(addresses(await add(d, "a", { pools: ["v4", "v6"] }))).toEqual(["10.60.0.10/24 via 10.60.0.1", "fd60::2/120 via fd60::1"]);
    expect(addresses(await add(d, "a", { network: "other" }))).toEqual(["10.60.0.11/24 via 10.60.0.1"]);
    expect(addresses(await add(d, "b", { network: "third" }))).toEqual(["10.60.0.12/24 via 10.60.0.1"]);
    const full = await add(d, "c");
    expect(full.json).toMatchObject({ code: 100 });
    expect(full.json.msg).toContain("pool v4 is exhausted: all 3 addresses");
    expect(await report(d, "v4")).toMatchObject({ kind: "named", size: "3", used: 3, free: "0", utilization: 100, orphans: { count: 0 } });
    const unknown = await add(d, "x", { pools: ["nope"] });
    expect(unknown.json).toMatchObject({ code: 7, msg: expect.stringContaining('unknown pool "nope"') });
    await d.store.close();
  }, 30_000);

  test("a /8 and a /48 pool: allocation at once, memory and start-up independent of size", async () => {
    const d = await daemon({ v4: { addresses: ["10.0.0.0/8"], prefix: 8 }, v6: { addresses: ["fd00:1::/48"], prefix: 48 } });
    expect(addresses(await add(d, "a", { pools: ["v4", "v6"] }))).toEqual(["10.0.0.1/8", "fd00:1::1/48"]);
    const r = await report(d, "v6");
    expect(r.size).toBe((2n ** 80n - 1n).toString());
    expect(r.used).toBe(1);
    await d.store.close();
  }, 30_000);

  test("99.9% full and fragmented: fill, free every other address, allocate again", async () => {
    const d = await daemon({ v4: { addresses: ["10.61.0.0/22"], prefix: 22 } }); // 1022 addresses
    for (let i = 0; i < 1022; i++) expect((await add(d, `c${i}`)).status).toBe(200);
    expect((await add(d, "over")).json.code).toBe(100);
    for (let i = 0; i < 1022; i += 2) await del(d, `c${i}`);
    const again = new Set<string>();
    for (let i = 0; i < 511; i++) {
      const r = await add(d, `again${i}`);
      expect(r.status).toBe(200);
      again.add(r.json.ips[0].address);
    }
    expect(again.size).toBe(511);
    expect((await add(d, "over2")).json.code).toBe(100);
    expect(d.ipam.takenSet("@ipv4", 4).extentCount).toBe(1);
    await d.store.close();
  }, 60_000);
});

describe("per-node subnets", () => {
  const nodes = { nodes: { supernet: "172.18.0.0/16", nodeSubnetPrefix: 24, gateway: "0.0.0.1" } } satisfies Record<string, NamedPoolInput>;

  test("each node claims the next free subnet, durably: the same node gets the same subnet after a restart", async () => {
    const path = join(dir, "nodes.db");
    const a = await daemon(nodes, { path, node: "node-a" });
    expect(addresses(await add(a, "c1", { pools: ["nodes"] }))).toEqual(["172.18.0.2/24 via 172.18.0.1"]);
    await a.store.close();
    // Another node on the same (here: local) store gets the next subnet.
    const b = await daemon(nodes, { path, node: "node-b" });
    expect(addresses(await add(b, "c2", { pools: ["nodes"] }))).toEqual(["172.18.1.2/24 via 172.18.1.1"]);
    expect((await report(b, "nodes")).nodeSubnets).toEqual([
      { node: "node-a", subnet: "172.18.0.0/24" },
      { node: "node-b", subnet: "172.18.1.0/24" },
    ]);
    await b.store.close();
    const a2 = await daemon(nodes, { path, node: "node-a" });
    expect(addresses(await add(a2, "c3", { pools: ["nodes"] }))).toEqual(["172.18.0.3/24 via 172.18.0.1"]);
    expect((await report(a2, "nodes")).nodeSubnet).toBe("172.18.0.0/24");
    await a2.store.close();
  }, 30_000);
});

describe("reuse policy", () => {
  test("releaseCooldown: a released address is not handed out before it has cooled down, even after a restart", async () => {
    const pools = { v4: { addresses: ["10.62.0.10-10.62.0.11"], prefix: 24, releaseCooldown: 30 } };
    const d = await daemon(pools);
    await add(d, "a");
    await add(d, "b");
    await del(d, "a");
    expect((await add(d, "c")).json.code).toBe(100); // .10 is cooling, .11 in use
    expect((await report(d, "v4")).cooling).toBe(1);
    await d.store.close();
    const again = await daemon(pools, { path: d.path, clock: { now: d.clock.now + 29_000 } });
    expect((await add(again, "c")).json.code).toBe(100);
    again.clock.now += 1_000;
    expect(addresses(await add(again, "c"))).toEqual(["10.62.0.10/24"]);
    await again.store.close();
  }, 30_000);

  test("run-out cooldowns end at most 32 per ADD, the following ADDs end the rest", async () => {
    const pools = { v4: { addresses: ["10.64.0.0/24"], prefix: 24, releaseCooldown: 30 } };
    const d = await daemon(pools);
    for (let i = 0; i < 100; i++) expect((await add(d, `c${i}`)).status).toBe(200);
    for (let i = 0; i < 100; i++) await del(d, `c${i}`);
    expect((await report(d, "v4")).cooling).toBe(100);
    d.clock.now += 30_000;
    // One ADD ends at most 32 run-out holds (one commit stays small); the next ones the rest.
    expect((await add(d, "n0")).status).toBe(200);
    expect((await report(d, "v4")).cooling).toBe(68);
    for (let i = 1; i <= 3; i++) await add(d, `n${i}`);
    expect((await report(d, "v4")).cooling).toBe(0);
    await d.store.close();
  }, 30_000);

  test("an ADD that fails still leaves the holds it ended ended, in memory and on disk alike", async () => {
    const pools = { v4: { addresses: ["10.67.0.10-10.67.0.11"], prefix: 24, releaseCooldown: 30 } };
    const d = await daemon(pools);
    await add(d, "a");
    await del(d, "a");
    d.clock.now += 30_000;
    // Fails after the pool's run-out cooldown was ended: the address is not in the pool.
    expect((await add(d, "b", { requestedIps: ["10.99.0.1"] })).json.code).toBe(102);
    expect((await report(d, "v4")).cooling).toBe(0);
    await d.store.close();
    const again = await daemon(pools, { path: d.path, clock: d.clock });
    expect((await report(again, "v4")).cooling).toBe(0);
    await again.store.close();
  }, 30_000);

  test("sticky: pod — a re-created pod gets its address back, nobody else takes it, the TTL returns it", async () => {
    const d = await daemon({ v4: { addresses: ["10.63.0.10-10.63.0.12"], prefix: 24, sticky: "pod", stickyTTL: 600 } });
    const pod = (name: string) => ({ pod: { namespace: "db", name } });
    expect(addresses(await add(d, "web-0-a", pod("web-0")))).toEqual(["10.63.0.10/24"]);
    expect(addresses(await add(d, "web-1-a", pod("web-1")))).toEqual(["10.63.0.11/24"]);
    await del(d, "web-0-a");
    expect(addresses(await add(d, "other", pod("other")))).toEqual(["10.63.0.12/24"]); // .10 stays web-0's
    expect((await add(d, "other2", pod("other2"))).json.code).toBe(100);
    expect((await report(d, "v4")).stickyParked).toBe(1);
    // web-0 is re-created (a new sandbox, possibly on another node sharing the store).
    expect(addresses(await add(d, "web-0-b", pod("web-0")))).toEqual(["10.63.0.10/24"]);
    await del(d, "web-0-b");
    d.clock.now += 600_000;
    expect(addresses(await add(d, "other2", pod("other2")))).toEqual(["10.63.0.10/24"]);
    await d.store.close();
  }, 30_000);
});

describe("review regressions", () => {
  test("renaming a pool on reload keeps its addresses taken: nothing is handed out twice", async () => {
    const d = await daemon({ v4: { addresses: ["10.65.0.0/29"], prefix: 29 } });
    expect(addresses(await add(d, "c1"))).toEqual(["10.65.0.1/29"]);
    await d.ipam.reconfigure({ pools: compilePools({ pods: { addresses: ["10.65.0.0/29"], prefix: 29 } }), defaults: [] });
    expect(addresses(await add(d, "c2", { pools: ["pods"] }))).toEqual(["10.65.0.2/29"]);
    expect(await report(d, "pods")).toMatchObject({ used: 2, orphans: { count: 0 } });
    await d.store.close();
  }, 30_000);

  test("inline ranges over a named pool's addresses are refused", async () => {
    const d = await daemon({ v4: { addresses: ["10.66.0.0/24"], prefix: 24 } });
    const r = await add(d, "c1", { pools: undefined, ranges: [[{ subnet: "10.66.0.0/25" }]] });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain("overlap the daemon's pool v4");
    await d.store.close();
  }, 30_000);

  test("sticky: an address reclaimed by CNI GC stays the pod's; moving to a static address lets the parked one go", async () => {
    const d = await daemon({ v4: { addresses: ["10.67.0.1-10.67.0.3"], prefix: 24, sticky: "pod" } });
    const pod = { pod: { namespace: "db", name: "pg-0" } };
    expect(addresses(await add(d, "a", pod))).toEqual(["10.67.0.1/24"]);
    await call(d, "/v1/cni/gc", { network: "net1", validAttachments: [] });
    expect((await report(d, "v4")).stickyParked).toBe(1);
    expect(addresses(await add(d, "b", pod))).toEqual(["10.67.0.1/24"]);
    await del(d, "b");
    expect(addresses(await add(d, "c", { ...pod, requestedIps: ["10.67.0.3"] }))).toEqual(["10.67.0.3/24"]);
    expect((await report(d, "v4")).stickyParked).toBe(0);
    expect(addresses(await add(d, "other", { pod: { namespace: "db", name: "other" } }))).toEqual(["10.67.0.1/24"]);
    await d.store.close();
  }, 30_000);
});

describe("redefinition", () => {
  test("addresses outside a new definition stay allocated, are reported as orphans, and are never handed out twice", async () => {
    const d = await daemon({ v4: { addresses: ["10.64.0.10-10.64.0.13"], prefix: 24 } });
    for (const c of ["a", "b", "c", "d"]) await add(d, c);
    await d.ipam.reconfigure({ pools: compilePools({ v4: { addresses: ["10.64.0.12-10.64.0.15"], prefix: 24 } }), defaults: [] });
    const r = await report(d, "v4");
    expect(r.orphans).toEqual({ count: 2, sample: ["10.64.0.10", "10.64.0.11"] });
    expect(r.used).toBe(2);
    expect(addresses(await add(d, "e"))).toEqual(["10.64.0.14/24"]);
    expect(addresses(await add(d, "f"))).toEqual(["10.64.0.15/24"]);
    expect((await add(d, "g")).json.code).toBe(100);
    // The orphan is still the holder's: ADD again returns it; DEL releases it for good.
    expect(addresses(await add(d, "a"))).toEqual(["10.64.0.10/24"]);
    await del(d, "a");
    expect((await report(d, "v4")).orphans.count).toBe(1);
    await d.store.close();
  }, 30_000);
});
