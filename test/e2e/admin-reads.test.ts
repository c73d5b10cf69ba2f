/**
 * Admin reads are bounded pages with a continuation token: however many allocations a node
 * holds, one read costs one page, the CLI follows the pages and streams them, and a crowd of
 * the largest reads cannot push a pod's ADD past its deadline.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { attachmentEnv, BINARY, cleanup, type Daemon, netconf, runPlugin, startDaemon } from "./harness.ts";
import { run } from "./netns.ts";
import { ALLOCATION_PAGE } from "../../src/protocol-admin.ts";

afterEach(cleanup);

async function get(daemon: Daemon, path: string): Promise<any> {
  const res = await fetch(`http://ipamd${path}`, { unix: daemon.socket });
  return res.json();
}

/** Fills network `fill` with `count` allocations through the import API (the real store path). */
async function fill(daemon: Daemon, count: number): Promise<void> {
  for (let from = 0; from < count; from += 10_000) {
    const entries = Array.from({ length: Math.min(10_000, count - from) }, (_, k) => {
      const i = from + k;
      return { ip: `10.${70 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, containerID: `fill${i}`, ifname: "eth0" };
    });
    const res = await fetch("http://ipamd/v1/import", { unix: daemon.socket, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ network: "fill", entries }) });
    expect(res.status).toBe(200);
  }
}

/** Address order: by family, then numerically. */
const order = (ip: string) => ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);

describe("paginated admin reads", () => {
  test("allocations: a bounded default page, a token to the next, every allocation once and in address order", async () => {
    const daemon = await startDaemon();
    await fill(daemon, 6000);
    const first = await get(daemon, "/v1/allocations");
    expect(first.allocations).toHaveLength(500);
    expect(typeof first.next).toBe("string");
    // Asking for more than a page's maximum gets the maximum, never the whole store.
    const big = await get(daemon, "/v1/allocations?limit=100000");
    expect(big.allocations).toHaveLength(ALLOCATION_PAGE.max);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await get(daemon, `/v1/allocations?limit=1000${token ? `&after=${encodeURIComponent(token)}` : ""}`);
      seen.push(...page.allocations.map((a: any) => a.ip));
      token = page.next;
      pages++;
    } while (token);
    expect(pages).toBe(6);
    expect(seen).toHaveLength(6000);
    expect(new Set(seen).size).toBe(6000);
    expect(seen.map(order)).toEqual([...seen.map(order)].sort((a, b) => a - b));
    const refused = await fetch("http://ipamd/v1/allocations?after=not-a-token", { unix: daemon.socket });
    expect(refused.status).toBe(400);
  }, 60_000);

  test("history pages newest first with a token; the CLI follows allocation pages and streams them", async () => {
    const daemon = await startDaemon();
    await fill(daemon, 1200);
    const first = await get(daemon, "/v1/history");
    expect(first.events).toHaveLength(100);
    const second = await get(daemon, `/v1/history?before=${encodeURIComponent(first.next)}`);
    expect(second.events).toHaveLength(100);
    expect(second.events[0].id).toBeLessThan(first.events[99].id);
    const table = await run([BINARY, "allocations", "--socket", daemon.socket]);
    expect(table.exitCode).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^IP\s+NETWORK/);
    expect(lines).toHaveLength(1 + 1200);
    const json = JSON.parse((await run([BINARY, "allocations", "--socket", daemon.socket, "--json"])).stdout);
    expect(json.allocations).toHaveLength(1200);
    const limited = await run([BINARY, "allocations", "--socket", daemon.socket, "--limit", "700", "--json"]);
    expect(JSON.parse(limited.stdout).allocations).toHaveLength(700);
  }, 60_000);

  test("twelve concurrent maximal reads of 100,000 allocations do not push a pod's ADD to code 11", async () => {
    const daemon = await startDaemon();
    await fill(daemon, 100_000);
    const reads = Array.from({ length: 12 }, () => fetch("http://ipamd/v1/allocations?limit=100000", { unix: daemon.socket }).then((r) => r.arrayBuffer()));
    const add = await runPlugin(attachmentEnv("ADD", "during-reads"), netconf(daemon.socket, { ranges: [[{ subnet: "10.99.0.0/24" }]] }));
    await Promise.all(reads);
    expect({ exitCode: add.exitCode, code: add.json?.code }).toEqual({ exitCode: 0, code: undefined });
  }, 120_000);
});
