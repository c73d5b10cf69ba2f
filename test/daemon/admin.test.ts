/** Admin routes through app.request over a real sqlite store: who has an address, history, release, gc, import, metrics. */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type DaemonApp } from "../../src/daemon/app.ts";
import { Engine } from "../../src/engine/engine.ts";
import { createLogger } from "../../src/log.ts";
import { DaemonMetrics } from "../../src/daemon/metrics.ts";
import { UtilizationWatch } from "../../src/daemon/observability.ts";
import { Reclaimer } from "../../src/daemon/reclaim.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-admin-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let app: DaemonApp;
let clock: { now: number };
let netnsDir: string;
let metrics: DaemonMetrics;

beforeEach(async () => {
  const store = await SqliteStore.open(join(dir, `admin-${n++}.db`));
  clock = { now: 10_000_000 };
  metrics = new DaemonMetrics();
  const log = createLogger({ json: true, level: -999 });
  let watch: UtilizationWatch | undefined;
  const ipam = await Engine.start(store, {
    node: "node-a",
    now: () => clock.now,
    observer: { allocated: (r) => watch?.allocated(r), released: (r, k) => watch?.released(r, k) },
  });
  watch = new UtilizationWatch(metrics, log, () => null);
  netnsDir = join(dir, `netns-${n}`);
  mkdirSync(netnsDir, { recursive: true });
  // Real paths stand in for netns bind mounts here; test/e2e/operations.test.ts uses real `ip netns`.
  const reclaimer = new Reclaimer(ipam, { graceMs: 300_000, now: () => clock.now });
  app = createApp(ipam, { reclaimer, metrics, log });
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await app.request(path, { method, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, json: res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text };
}

const ranges = [[{ subnet: "10.80.0.0/24" }]];
const add = (containerID: string, pod: string, netns = join(netnsDir, containerID)) => {
  const [namespace, name] = pod.split("/");
  return call("POST", "/v1/cni/add", { network: "n1", containerID, ifname: "eth0", netns, ranges, pod: { namespace, name, uid: `uid-${name}` } });
};
const del = (containerID: string) => call("POST", "/v1/cni/del", { network: "n1", containerID, ifname: "eth0" });

describe("who has an address, since when, and who had it before", () => {
  test("allocations are listed and filtered by pod, node, pool and container", async () => {
    await add("c1", "default/web-0");
    await add("c2", "prod/api-1");
    const all = (await call("GET", "/v1/allocations")).json.allocations;
    expect(all.map((a: any) => a.ip)).toEqual(["10.80.0.2", "10.80.0.3"]);
    expect(all[0]).toMatchObject({ network: "n1", containerID: "c1", ifname: "eth0", podNamespace: "default", podName: "web-0", podUid: "uid-web-0", node: "node-a", createdAt: clock.now });
    expect((await call("GET", "/v1/allocations?pod=prod/api-1")).json.allocations.map((a: any) => a.ip)).toEqual(["10.80.0.3"]);
    expect((await call("GET", "/v1/allocations?node=node-b")).json.allocations).toEqual([]);
    expect((await call("GET", "/v1/allocations?container=c1")).json.allocations).toHaveLength(1);
    // Inline ranges are no named pool: their allocations are found by network, and name their range set.
    expect((await call("GET", "/v1/allocations?network=n1")).json.allocations.map((a: any) => `${a.pool} ${a.rangeSet}`)).toEqual(Array(2).fill("null 10.80.0.0/24[10.80.0.1-10.80.0.254 gw 10.80.0.1]"));
    expect((await call("GET", "/v1/allocations?pod=nonsense")).json.code).toBe(7);
  }, 30_000);

  test("an address's holder and history; history by pod and container", async () => {
    await add("c1", "default/web-0");
    clock.now += 1000;
    await del("c1");
    // Force reuse of .2 by filling forward and wrapping.
    for (let i = 2; i < 255; i++) await add(`f${i}`, "default/filler");
    clock.now += 1000;
    const shown = (await call("GET", "/v1/allocations/10.80.0.2")).json;
    expect(shown.holders.map((h: any) => h.containerID)).toEqual(["f254"]);
    expect(shown.history.map((e: any) => [e.kind, e.containerID, e.podName])).toEqual([
      ["allocated", "f254", "filler"],
      ["released", "c1", "web-0"],
      ["allocated", "c1", "web-0"],
    ]);
    expect((await call("GET", "/v1/history?pod=default/web-0")).json.events.map((e: any) => e.kind)).toEqual(["released", "allocated"]);
    expect((await call("GET", "/v1/history?container=c1&limit=1")).json.events).toHaveLength(1);
    expect((await call("GET", "/v1/allocations/not-an-ip")).json.code).toBe(7);
  }, 30_000);

  test("release needs confirm: true, frees the address, and says who held it", async () => {
    await add("c1", "default/web-0");
    expect((await call("POST", "/v1/allocations/10.80.0.2/release", {})).json.code).toBe(7);
    const released = await call("POST", "/v1/allocations/10.80.0.2/release", { confirm: true });
    expect(released.json.released.map((r: any) => r.containerID)).toEqual(["c1"]);
    expect((await call("POST", "/v1/allocations/10.80.0.2/release", { confirm: true })).status).toBe(404);
    expect((await call("GET", "/v1/allocations/10.80.0.2")).json.history[0]).toMatchObject({ kind: "released", cause: "released by an operator" });
  }, 30_000);
});

describe("leak reclamation", () => {
  test("reclaims only when the netns is gone longer than the grace and the allocation is older than it; dry run changes nothing", async () => {
    mkdirSync(join(netnsDir, "alive"));
    await add("alive", "default/alive");
    await add("dead", "default/dead"); // its netns path never existed
    await add("nons", "default/nons", "");
    expect((await call("POST", "/v1/gc", { dryRun: true })).json).toEqual({ reclaimed: [], pending: 1, dryRun: true });
    clock.now += 299_000;
    expect((await call("POST", "/v1/gc", {})).json.reclaimed).toEqual([]);
    clock.now += 2_000;
    const dry = (await call("POST", "/v1/gc", { dryRun: true })).json;
    expect(dry.reclaimed.map((r: any) => r.containerID)).toEqual(["dead"]);
    expect((await call("GET", "/v1/allocations?container=dead")).json.allocations).toHaveLength(1);
    const real = (await call("POST", "/v1/gc", {})).json;
    expect(real.reclaimed.map((r: any) => r.ip)).toEqual(["10.80.0.3"]);
    expect(real.reclaimed[0].reason).toContain("missing for 301s");
    expect((await call("GET", "/v1/allocations")).json.allocations.map((a: any) => a.containerID).sort()).toEqual(["alive", "nons"]);
    expect((await call("GET", "/v1/allocations/10.80.0.3")).json.history[0]).toMatchObject({ kind: "reclaimed", containerID: "dead" });
  }, 30_000);

  test("netns paths outside the judged directories are never reclaimed", async () => {
    const ipam = await Engine.start(await SqliteStore.open(join(dir, `dirs-${n++}.db`)), { node: "node-a" });
    await ipam.add({ network: "n1", containerID: "proc", ifname: "eth0", netns: "/proc/999999/ns/net", ranges });
    await ipam.add({ network: "n1", containerID: "gone", ifname: "eth0", netns: join(netnsDir, "gone"), ranges });
    const reclaimer = new Reclaimer(ipam, { graceMs: 0, now: () => Date.now() + 1, netnsDirs: [netnsDir] });
    expect((await reclaimer.sweep()).reclaimed.map((r) => r.containerID)).toEqual(["gone"]);
    expect((await reclaimer.sweep()).reclaimed).toEqual([]);
    expect((await ipam.check({ network: "n1", containerID: "proc", ifname: "eth0" })).length).toBe(1);
  }, 30_000);

  test("an allocation younger than the grace is not reclaimed even when its netns is long gone", async () => {
    const netns = join(netnsDir, "shared");
    await add("early", "default/early", netns);
    clock.now += 600_000;
    await call("POST", "/v1/gc", {}); // first sight of the missing netns
    clock.now += 250_000;
    await add("young", "default/young", netns);
    clock.now += 50_000;
    const first = (await call("POST", "/v1/gc", {})).json;
    expect(first.reclaimed.map((r: any) => r.containerID)).toEqual(["early"]);
    expect(first.pending).toBe(1);
    clock.now += 250_000;
    expect((await call("POST", "/v1/gc", {})).json.reclaimed.map((r: any) => r.containerID)).toEqual(["young"]);
  }, 30_000);
});

describe("import and metrics", () => {
  test("import is idempotent, keeps prefix and gateway from the ranges, and reports conflicts", async () => {
    await add("running", "default/x");
    const body = {
      network: "n1",
      ranges,
      entries: [
        { ip: "10.80.0.50", containerID: "hl1", ifname: "eth0" },
        { ip: "10.80.0.2", containerID: "hl2", ifname: "eth0" },
      ],
      cursors: [{ rangeSet: 0, ip: "10.80.0.50" }],
    };
    expect((await call("POST", "/v1/import", body)).json).toEqual({ imported: 1, unchanged: 0, conflicts: [{ ip: "10.80.0.2", containerID: "hl2", heldBy: "running/eth0" }] });
    expect((await call("POST", "/v1/import", body)).json).toMatchObject({ imported: 0, unchanged: 1 });
    expect((await call("GET", "/v1/allocations/10.80.0.50")).json.holders[0]).toMatchObject({ prefix: 24, gateway: "10.80.0.1", containerID: "hl1" });
    expect((await call("GET", "/v1/allocations/10.80.0.50")).json.history[0]).toMatchObject({ kind: "imported" });
    // The cursor came along: the next ADD continues after the imported last_reserved_ip.
    expect((await add("next", "default/y")).json.ips[0].address).toBe("10.80.0.51");
  }, 30_000);

  test("/metrics counts allocations, releases, reclaims, errors and latency", async () => {
    await add("c1", "default/a");
    await add("c2", "default/b");
    await del("c1");
    await call("POST", "/v1/cni/add", "{");
    const text = (await call("GET", "/metrics")).json as string;
    // The netconf's inline ranges are no named pool: counted by network, with an empty pool.
    expect(text).toMatch(/^ipamd_allocations_total\{pool="",network="n1"\} 2$/m);
    expect(text).toMatch(/^ipamd_releases_total\{pool="",network="n1"\} 1$/m);
    expect(text).toMatch(/^ipamd_errors_total\{code="6"\} 1$/m);
    expect(text).toMatch(/^ipamd_request_duration_seconds_count\{command="add"\} 3$/m);
    expect(text).toMatch(/^ipamd_range_set_allocated_addresses\{network="n1",range_set="10\.80\.0\.0\/24\[10\.80\.0\.1-10\.80\.0\.254 gw 10\.80\.0\.1\]"\} 1$/m);
    expect(text).toMatch(/^ipamd_range_set_size_addresses\{network="n1",range_set="[^"]+"\} 253$/m);
  }, 30_000);
});
