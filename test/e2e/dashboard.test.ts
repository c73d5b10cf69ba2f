/**
 * The dashboard in a real browser, as users reach it: `dist/ipamd serve --admin-listen
 * 127.0.0.1:PORT` over TCP, Debian's chromium driven by playwright-core (which never
 * downloads a browser of its own). The daemon is seeded through its unix socket as the
 * plugin would, and a leak is reclaimed by `POST /v1/gc` (grace 0, netns judged only in the
 * test's own dir). The test loads the pools page, searches, opens an address's history,
 * and saves screenshots to test-artifacts/ for a human to judge.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { cleanup, type Daemon, onCleanup, startDaemonWithAdmin, tempDir } from "./harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dir, "../../test-artifacts");
const hex = (seed: string) => new Bun.CryptoHasher("sha256").update(seed).digest("hex");

const APPS = ["web", "api", "checkout", "search", "cart", "auth"];
/** The i-th pod of the main network: it holds 10.70.0.(i+2) and fd70::(i+2). */
const podOf = (i: number) => `${i % 3 === 0 ? "shop" : "default"}/${APPS[i % APPS.length]}-7f9c8d-${hex(String(i)).slice(0, 5)}`;

let context: BrowserContext;
let page: Page;
let base: string;

/** A node with a few pools in use: one comfortable, one above 80%, one full, IPv6, netconf ranges, and a reclaim. */
async function seed(dir: string): Promise<Daemon & { port: number }> {
  const netnsDir = join(dir, "netns"); // the only netns dir the daemon judges; it stays empty
  mkdirSync(netnsDir);
  const config = join(dir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({
      node: "worker-1",
      reclaimInterval: 0,
      reclaimGrace: 0,
      reclaimNetnsDirs: [netnsDir],
      pools: {
        "pods-v4": { addresses: ["10.70.0.0/27"], prefix: 24, gateway: "10.70.0.1" },
        "pods-v6": { addresses: ["fd70::/64"], prefix: 64, gateway: "fd70::1" },
        ingress: { addresses: ["10.71.0.10-10.71.0.19"], prefix: 24, releaseCooldown: 60 },
        batch: { addresses: ["10.72.0.0/28"], prefix: 28, sticky: "pod" },
        nodes: { supernet: "10.80.0.0/16", nodeSubnetPrefix: 24 },
      },
    }),
  );
  const daemon = await startDaemonWithAdmin({ dir, args: ["--config", config] });
  const call = async (path: string, body: Record<string, unknown>) => {
    const res = await fetch(`http://ipamd${path}`, { unix: daemon.socket, method: "POST", body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`seeding ${path} ${JSON.stringify(body)} answered ${res.status}: ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const add = async (network: string, pod: string, body: Record<string, unknown>) => {
    const [namespace, name] = pod.split("/");
    await call("/v1/cni/add", { network, containerID: hex(pod), ifname: "eth0", netns: `/var/run/netns/cni-${hex(pod).slice(0, 8)}`, pod: { namespace, name, uid: hex(`uid ${pod}`).slice(0, 36) }, ...body });
  };
  for (let i = 0; i < 26; i++) await add("k8s-pod-network", podOf(i), { pools: ["pods-v4", "pods-v6"] });
  for (let i = 0; i < 10; i++) await add("ingress-net", `ingress/nginx-${i}`, { pools: ["ingress"] });
  for (let i = 0; i < 3; i++) await add("batch-net", `jobs/report-${i}`, { pools: ["batch"] });
  for (let i = 0; i < 40; i++) await add("node-net", `monitoring/exporter-${i}`, { pools: ["nodes"] });
  for (let i = 0; i < 4; i++) await add("legacy", `legacy/db-${i}`, { ranges: [[{ subnet: "192.168.40.0/24" }]] });
  // A pod that died without a DEL: its netns is gone, the sweep reclaims its address.
  await add("k8s-pod-network", "default/leaky-job-x2x9q", { pools: ["pods-v4"], netns: join(netnsDir, "gone") });
  const swept = await call("/v1/gc", {});
  if (swept.reclaimed?.length !== 1) throw new Error(`seeding expected one reclaim, got ${JSON.stringify(swept)}`);
  return daemon;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = tempDir("ipamd-dashboard-");
  const daemon = await seed(dir);
  base = `http://127.0.0.1:${daemon.port}`;
  context = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  onCleanup(() => context.close());
  // Only the daemon's listener: anything else the page tries to load is a bug (and blocked).
  const origin = base.replace(/[.]/g, "\\.");
  await context.route(new RegExp(`^(?!${origin}/)`), (route) => route.abort());
  page = context.pages()[0] ?? (await context.newPage());
  page.on("dialog", (d) => {
    throw new Error(`the page opened a ${d.type()} dialog: ${d.message()}`);
  });
}, 60_000);

afterAll(cleanup);

describe("the dashboard in chromium", () => {
  test("the pools page shows every pool with a utilization bar coloured by level, and the recent reclaim", async () => {
    const response = await page.goto(`${base}/`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe("Pools · ipamd");
    const cards = page.locator("section.pool");
    expect(await cards.locator("h3").allTextContents()).toEqual(["pods-v4", "pods-v6", "ingress", "batch", "nodes", "network legacy"]);
    expect(await cards.filter({ hasText: "nodes" }).textContent()).toContain("this node 10.80.0.0/24");
    const v4 = cards.filter({ hasText: "pods-v4" });
    const bar = v4.getByRole("progressbar");
    // 26 pods of the /27's 30 addresses; the reclaimed one's is free again.
    expect(await bar.getAttribute("aria-valuetext")).toBe("86.7%");
    expect(await bar.getAttribute("class")).toContain("warn");
    const width = await bar.locator("span").evaluate((el) => el.getBoundingClientRect().width / el.parentElement!.getBoundingClientRect().width);
    expect(width).toBeCloseTo(0.867, 2);
    expect(await cards.filter({ hasText: "ingress" }).getByRole("progressbar").getAttribute("class")).toContain("crit");
    const reclaims = page.getByRole("table", { name: "Recent reclaims" });
    await expect(reclaims.locator("tbody tr").count()).resolves.toBe(1);
    expect(await reclaims.locator("tbody tr").first().textContent()).toContain("default/leaky-job-x2x9q");
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
  }, 30_000);

  test("typing in the search box and submitting lists the matching allocations", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("searchbox", { name: "Search allocations" }).fill("ingress/nginx-3");
    await Promise.all([page.waitForURL(/\/allocations\?q=ingress%2Fnginx-3$/), page.getByRole("button", { name: "Search" }).click()]);
    const rows = page.locator("table tbody tr");
    expect(await rows.count()).toBe(1);
    expect(await rows.first().locator("td").first().textContent()).toBe("10.71.0.13/24");
    // A container ID prefix, as `crictl ps` prints it: both addresses of the dual-stack pod.
    const id = hex(podOf(4)).slice(0, 12);
    await page.getByRole("searchbox").fill(id);
    await Promise.all([page.waitForURL(new RegExp(`q=${id}$`)), page.getByRole("searchbox").press("Enter")]);
    expect(await page.locator("table tbody tr td.ip").allTextContents()).toEqual(["10.70.0.6/24", "fd70::6/64"]);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-search.png"), fullPage: true });
  }, 30_000);

  test("an address's page shows its holder and history, reached from the allocations table", async () => {
    await page.goto(`${base}/allocations?q=default%2Fleaky-job-x2x9q`);
    expect(await page.locator(".empty").textContent()).toContain("No allocation matches pod default/leaky-job-x2x9q");
    await page.goto(`${base}/`);
    await Promise.all([page.waitForURL(/\/address\//), page.getByRole("table", { name: "Recent reclaims" }).locator("td.ip a").first().click()]);
    await expect(page.locator("h1").textContent()).resolves.toBe("10.70.0.28");
    const events = page.locator("table tbody tr");
    expect(await events.locator(".badge").allTextContents()).toEqual(["reclaimed", "allocated"]);
    expect(await events.first().textContent()).toContain("missing for");

    await page.goto(`${base}/allocations?q=10.70.0.2`);
    await Promise.all([page.waitForURL(/\/address\/10\.70\.0\.2$/), page.locator("td.ip a").first().click()]);
    expect(await page.locator("section.card dl").textContent()).toContain("shop/web-7f9c8d-");
    expect(await page.locator("table tbody tr .badge").allTextContents()).toEqual(["allocated"]);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-address.png"), fullPage: true });
  }, 30_000);

  test("at a phone's width nothing overflows the page sideways", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const path of ["/", "/allocations", "/address/10.70.0.28"]) {
        await page.goto(`${base}${path}`);
        const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
        expect({ path, overflow }).toEqual({ path, overflow: 0 });
      }
      await page.goto(`${base}/`);
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
      await page.goto(`${base}/allocations?q=shop%2F`);
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone-allocations.png") });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  }, 30_000);

  test("an unknown address is a friendly 404 page, not a JSON error", async () => {
    const response = await page.goto(`${base}/address/10.99.0.1`);
    expect(response?.status()).toBe(404);
    expect(await page.locator("h1").textContent()).toBe("No record of 10.99.0.1");
    expect(await page.getByRole("link", { name: "All allocations" }).count()).toBe(1);
  }, 30_000);
});
