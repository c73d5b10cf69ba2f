/** Dashboard pages through app.request over a real sqlite store: pools, search, an address's history, escaping, errors. */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type DaemonApp } from "../../src/daemon/app.ts";
import { Engine } from "../../src/engine/engine.ts";
import { Reclaimer } from "../../src/daemon/reclaim.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { type AllocationRecord, matchesSearch } from "../../src/store/store.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-dashboard-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let app: DaemonApp;
let store: SqliteStore;
let ipam: Engine;
let clock: { now: number };

beforeEach(async () => {
  store = await SqliteStore.open(join(dir, `dashboard-${n++}.db`));
  clock = { now: Date.now() - 3_600_000 };
  ipam = await Engine.start(store, {
    node: "node-a",
    now: () => clock.now,
    pools: compilePools({
      small: { addresses: ["10.90.0.10-10.90.0.19"], prefix: 24 },
      v6: { addresses: ["fd90::/120"], prefix: 120 },
    }),
  });
  app = createApp(ipam);
});

async function get(path: string): Promise<{ status: number; html: string; headers: Headers }> {
  const res = await app.request(path);
  return { status: res.status, html: await res.text(), headers: res.headers };
}

async function add(containerID: string, pod: string, body: Record<string, unknown> = {}): Promise<string[]> {
  const namespace = pod.slice(0, pod.indexOf("/"));
  const name = pod.slice(pod.indexOf("/") + 1);
  const res = await app.request("/v1/cni/add", {
    method: "POST",
    body: JSON.stringify({ network: "n1", containerID, ifname: "eth0", netns: `/var/run/netns/${containerID}`, pools: ["small"], pod: { namespace, name, uid: `uid-${name}` }, ...body }),
  });
  const json = (await res.json()) as any;
  if (res.status !== 200) throw new Error(`ADD ${containerID} answered ${res.status}: ${JSON.stringify(json)}`);
  return json.ips.map((ip: any) => ip.address);
}

/** The addresses listed in a page's tables, in order. */
const listed = (html: string) => [...html.matchAll(/<td class="ip"[^>]*>(?:<span>)?<a href="\/address\/[^"]+">([^<]+)<\/a>/g)].map((m) => m[1]);

describe("the pools page", () => {
  test("shows each pool with its figures and a utilization bar coloured by level", async () => {
    for (let i = 0; i < 9; i++) await add(`c${i}`, `default/web-${i}`); // 9 of 10: amber
    await add("six", "default/six", { pools: ["v6"] });
    const { status, html, headers } = await get("/");
    expect(status).toBe(200);
    expect(headers.get("content-type")).toContain("text/html");
    expect(headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain("2 pools · 10 addresses in use");
    expect(html).toMatch(/class="meter warn" role="progressbar" aria-label="small utilization"[^>]*aria-valuenow="90" aria-valuetext="90%"><span style="width:90%">/);
    expect(html).toMatch(/class="meter ok" role="progressbar" aria-label="v6 utilization"/);
    expect(html).toContain("10.90.0.10-10.90.0.19");
    expect(html).toContain("Nothing reclaimed");
    await add("c9", "default/web-9");
    expect((await get("/")).html).toMatch(/class="meter crit"[^>]*aria-valuetext="100%"/);
  }, 30_000);

  test("lists recent reclaims, and only reclaims", async () => {
    const [first] = await add("gone-1", "default/leak-1");
    const [second] = await add("gone-2", "default/leak-2");
    await add("alive", "default/alive");
    await app.request("/v1/cni/del", { method: "POST", body: JSON.stringify({ network: "n1", containerID: "alive", ifname: "eth0" }) });
    const reclaimer = new Reclaimer(ipam, { graceMs: 1000, now: () => clock.now, exists: async (p) => !p.includes("gone") });
    await reclaimer.sweep();
    clock.now += 2000;
    expect((await reclaimer.sweep()).reclaimed).toHaveLength(2);
    const { html } = await get("/");
    const section = html.slice(html.indexOf("Recent reclaims"));
    expect(listed(section).sort()).toEqual([first, second].sort());
    expect(section).toContain("default/leak-1");
    expect(section).not.toContain("default/alive");
    expect((await store.history({ kind: "reclaimed" })).map((e) => e.kind)).toEqual(["reclaimed", "reclaimed"]);
    expect((await store.history({ kind: "released" })).map((e) => e.containerID)).toEqual(["alive"]);
  }, 30_000);
});

describe("searching allocations", () => {
  beforeEach(async () => {
    await add("3f1a9c0e7b2d", "default/web-0");
    await add("3f1a77d00000", "default/web-1");
    await add("9b8e00aa11ff", "prod/api-0");
    await add("dual", "prod/db-0", { pools: ["small", "v6"] });
  });

  test("every allocation without a query, with links to each address's page", async () => {
    const { html } = await get("/allocations");
    expect(listed(html)).toEqual(["10.90.0.10", "10.90.0.11", "10.90.0.12", "10.90.0.13", "fd90::1"]);
    expect(html).toContain('<a href="/address/fd90%3A%3A1">fd90::1</a>');
    expect(html).toContain("5 allocations.");
  }, 30_000);

  test("by address, in any spelling of it, with a link to its history", async () => {
    expect(listed((await get("/allocations?q=10.90.0.12")).html)).toEqual(["10.90.0.12"]);
    const v6 = await get(`/allocations?q=${encodeURIComponent("FD90:0:0::1")}`);
    expect(listed(v6.html)).toEqual(["fd90::1"]);
    expect(v6.html).toContain("history of fd90::1");
    expect(listed((await get("/allocations?q=10.90.0.1")).html)).toEqual([]); // an address, not a prefix
  }, 30_000);

  test("by pod as namespace/name, and by namespace/", async () => {
    expect(listed((await get("/allocations?q=prod%2Fdb-0")).html)).toEqual(["10.90.0.13", "fd90::1"]);
    expect(listed((await get("/allocations?q=prod/")).html)).toEqual(["10.90.0.12", "10.90.0.13", "fd90::1"]);
    expect((await get("/allocations?q=prod/nope")).html).toContain("No allocation matches pod prod/nope.");
  }, 30_000);

  test("by a container ID prefix, a pod name prefix, an address prefix or a namespace", async () => {
    expect(listed((await get("/allocations?q=3f1a")).html)).toEqual(["10.90.0.10", "10.90.0.11"]);
    expect(listed((await get("/allocations?q=3f1a9")).html)).toEqual(["10.90.0.10"]);
    expect(listed((await get("/allocations?q=web-")).html)).toEqual(["10.90.0.10", "10.90.0.11"]);
    expect(listed((await get("/allocations?q=fd90:")).html)).toEqual(["fd90::1"]);
    expect(listed((await get("/allocations?q=prod")).html)).toEqual(["10.90.0.12", "10.90.0.13", "fd90::1"]);
    expect(listed((await get("/allocations?q=zzz")).html)).toEqual([]);
  }, 30_000);

  test("by node, from the search box or the table's node links, and by pool", async () => {
    expect(listed((await get("/allocations?q=node-a")).html)).toHaveLength(5);
    expect(listed((await get("/allocations?node=node-a")).html)).toHaveLength(5);
    expect(listed((await get("/allocations?node=node-b")).html)).toEqual([]);
    const byPool = await get("/allocations?pool=v6");
    expect(listed(byPool.html)).toEqual(["fd90::1"]);
    expect(byPool.html).toContain('aria-label="Remove the pool filter"');
  }, 30_000);

  test("pages of 50, with previous and next links", async () => {
    const big = compilePools({ big: { addresses: ["10.91.0.0/24"], prefix: 24 } });
    ipam = await Engine.start(store, { node: "node-a", pools: big });
    app = createApp(ipam);
    for (let i = 0; i < 60; i++) await add(`bulk-${i}`, "batch/worker", { pools: ["big"] });
    const first = await get("/allocations?pool=big");
    expect(listed(first.html)).toHaveLength(50);
    expect(first.html).toContain('href="/allocations?pool=big&amp;page=2" rel="next"');
    const second = await get("/allocations?pool=big&page=2");
    expect(listed(second.html)).toEqual(Array.from({ length: 10 }, (_, i) => `10.91.0.${51 + i}`));
    expect(second.html).toContain('href="/allocations?pool=big" rel="prev"');
    expect(second.html).toContain("51–60");
    expect(listed((await get("/allocations?pool=big&page=nonsense")).html)).toHaveLength(50);
  }, 30_000);

  test("the store's search in SQL agrees with matchesSearch, the rule in-memory backends use", async () => {
    const all = await store.allocations({});
    for (const term of ["3f1a", "web", "prod", "pro", "node", "10.90.0.1", "fd", "dual", "x", "default/web-0", "web-0", "10.90.0.13"]) {
      const expected = all.filter((r: AllocationRecord) => matchesSearch(r, term)).map((r) => r.ip);
      expect({ term, ips: (await store.allocations({ search: term })).map((r) => r.ip) }).toEqual({ term, ips: expected });
    }
  }, 30_000);
});

describe("an address's page", () => {
  test("shows the current holder and the whole history, newest first", async () => {
    const [ip] = await add("old", "default/old-pod");
    await app.request("/v1/cni/del", { method: "POST", body: JSON.stringify({ network: "n1", containerID: "old", ifname: "eth0" }) });
    // The allocator moves on after a release; fill the pool to come back round to the address.
    for (let i = 0; i < 10; i++) await add(`fill-${i}`, `default/fill-${i}`);
    const { status, html } = await get(`/address/${ip}`);
    expect(status).toBe(200);
    expect(html).toContain(`<h1>${ip}</h1>`);
    expect(html).toContain("Current holder");
    expect(html).toContain("default/fill-9");
    const kinds = [...html.matchAll(/<span class="badge (allocated|released|reclaimed)">/g)].map((m) => m[1]);
    expect(kinds).toEqual(["allocated", "released", "allocated"]);
    expect(html.indexOf("fill-9")).toBeLessThan(html.indexOf("old-pod"));
  }, 30_000);

  test("a released address shows as free, with its history", async () => {
    const [ip] = await add("once", "default/once");
    await app.request("/v1/cni/del", { method: "POST", body: JSON.stringify({ network: "n1", containerID: "once", ifname: "eth0" }) });
    const { status, html } = await get(`/address/${ip}`);
    expect(status).toBe(200);
    expect(html).toContain('<span class="badge">free</span>');
    expect(html).toContain("Free now; last released");
  }, 30_000);

  test("a reserved address says so, with its pool, who and why; the pool's card counts it, with its space and scope", async () => {
    const res = await app.request("/v1/reservations", { method: "POST", body: JSON.stringify({ pool: "small", first: "10.90.0.12", note: "VIP <ingress>", by: "alice" }) });
    expect(res.status).toBe(200);
    const { html } = await get("/address/10.90.0.12");
    expect(html).toContain('<span class="badge">reserved</span>');
    expect(html).toContain("Reserved in pool <b>small</b> by alice: VIP &lt;ingress&gt;");
    const pools = (await get("/")).html;
    expect(pools).toMatch(/reserved <b>1<\/b>/);
    expect(pools).toMatch(/space <b>default<\/b>/);
    expect(pools).toMatch(/namespaces <b>all<\/b>/);
  }, 30_000);

  test("an address never handed out is a friendly 404 page; text that is no address is a 400 page", async () => {
    const unknown = await get("/address/10.99.0.1");
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toContain("text/html");
    expect(unknown.html).toContain("No record of 10.99.0.1");
    expect(unknown.html).toContain('href="/allocations"');
    const bad = await get("/address/not-an-ip");
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("is not an IP address");
    expect(bad.html).toContain('href="/allocations?q=not-an-ip"');
  }, 30_000);
});

describe("escaping", () => {
  const hostile = `<script>alert("pwned")</script><img src=x onerror=alert(1)>`;

  test("a hostile pod name, container ID and search text are escaped on every page", async () => {
    // One held, one reclaimed (for the home page's list), both named by the hostile pod.
    await add("evil-1", `evil/${hostile}`, { netns: "/var/run/netns/gone" });
    // The socket refuses such a container ID (CNI's rules); a host-local data dir may hold any.
    const imported = await app.request("/v1/import", { method: "POST", body: JSON.stringify({ network: "n1", entries: [{ ip: "10.99.9.9", containerID: `"><svg onload=alert(2)>`, ifname: "eth0" }] }) });
    expect(imported.status).toBe(200);
    const [ip] = await add("held", `evil/${hostile}`);
    await new Reclaimer(ipam, { graceMs: 0, now: () => clock.now, exists: async (p) => !p.endsWith("/gone") }).sweep();
    expect((await store.history({ kind: "reclaimed" })).map((e) => e.podName)).toEqual([hostile]);
    const pages = ["/", "/allocations", `/allocations?q=${encodeURIComponent(hostile)}`, `/allocations?q=evil/`, `/address/${ip}`, `/address/${encodeURIComponent(hostile)}`];
    for (const path of pages) {
      const { html } = await get(path);
      expect({ path, raw: html.includes("<script>alert") || html.includes("<img src=x") || html.includes("<svg onload") }).toEqual({ path, raw: false });
    }
    const { html } = await get("/");
    expect(html).toContain("evil/&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect((await get("/allocations")).html).toContain("&quot;&gt;&lt;svg onload=alert(2)&gt;");
    // The only scripts are the page's own: one inline, allowed by its hash in the CSP.
    expect(html.match(/<script/g)).toHaveLength(1);
  }, 30_000);
});
