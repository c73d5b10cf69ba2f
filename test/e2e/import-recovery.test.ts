/**
 * Taking over host-local's allocations when things go wrong: an import that fails partway
 * (the disk fills) leaves the daemon allocating correctly and can simply be run again; and an
 * imported address is answered with the prefix and gateway of the netconf that asks for it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { resizeDisk, smallDisk } from "./disk.ts";
import { attachmentEnv, cleanup, type Daemon, netconf, runPlugin, startDaemon, waitFor } from "./harness.ts";

afterEach(cleanup);

async function post(daemon: Daemon, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://ipamd${path}`, { unix: daemon.socket, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function get(daemon: Daemon, path: string): Promise<any> {
  return (await fetch(`http://ipamd${path}`, { unix: daemon.socket })).json();
}

/** Every allocation of a network, page after page. */
async function allocations(daemon: Daemon, network: string): Promise<any[]> {
  const all: any[] = [];
  let next: string | undefined;
  do {
    const page = await get(daemon, `/v1/allocations?network=${network}&limit=5000${next ? `&after=${encodeURIComponent(next)}` : ""}`);
    all.push(...page.allocations);
    next = page.next;
  } while (next);
  return all;
}

/** host-local's allocations of 10.64.0.0/16 as `ipamd import` sends them: one per container. */
const entries = Array.from({ length: 5000 }, (_, i) => ({ ip: `10.64.${(i >> 8) + 1}.${i & 255}`, containerID: `hl${i}`, ifname: "eth0" }));
const ranges = [[{ subnet: "10.64.0.0/16" }]];

describe("import", () => {
  test("fails partway on a full disk: the daemon still allocates right, and the same import run again completes it", async () => {
    const disk = await smallDisk("2m");
    const daemon = await startDaemon({ args: ["--db", join(disk, "ipamd.db")] });
    const failed = await post(daemon, "/v1/import", { network: "migr", ranges, entries });
    expect(failed.status).not.toBe(200);
    expect(failed.json.code).toBe(11);
    expect(failed.json.msg).toContain("the disk is full");

    await resizeDisk(disk, "64m");
    await waitFor(async () => (await fetch("http://ipamd/v1/status", { unix: daemon.socket })).ok, 5000, "STATUS to see the space back");
    // What the failed import committed is held, what it did not is free: the counts agree.
    const committed = (await allocations(daemon, "migr")).length;
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(entries.length);
    expect((await get(daemon, "/v1/status")).allocations).toBe(committed);

    const add = await runPlugin(attachmentEnv("ADD", "fresh1"), netconf(daemon.socket, { ranges }, { name: "migr" }));
    expect(add.exitCode).toBe(0);
    const fresh = add.json.ips[0].address.split("/")[0];
    const committedIps = new Set((await allocations(daemon, "migr")).filter((a: any) => a.containerID !== "fresh1").map((a: any) => a.ip));
    expect(committedIps.has(fresh)).toBe(false);

    const again = await post(daemon, "/v1/import", { network: "migr", ranges, entries });
    expect(again.status).toBe(200);
    // The fresh ADD may have taken an address the import wanted: then it is a conflict, named.
    const conflicts = again.json.conflicts.map((c: any) => c.ip);
    expect(conflicts.every((ip: string) => ip === fresh)).toBe(true);
    expect(again.json.unchanged).toBe(committed);
    expect(again.json.imported + again.json.unchanged + conflicts.length).toBe(entries.length);
    const all = (await allocations(daemon, "migr"));
    expect(all.length).toBe(entries.length + 1 - conflicts.length);
    expect(new Set(all.map((a: any) => a.ip)).size).toBe(all.length);
    expect((await get(daemon, "/v1/status")).allocations).toBe(all.length);
    // Idempotent: a third run changes nothing.
    const third = await post(daemon, "/v1/import", { network: "migr", ranges, entries });
    expect(third.json.imported).toBe(0);
  }, 120_000);

  test("an address imported without the netconf comes back with the prefix and gateway of the ADD's range", async () => {
    const daemon = await startDaemon();
    const imported = await post(daemon, "/v1/import", { network: "testnet", entries: [{ ip: "10.65.0.7", containerID: "imp1", ifname: "eth0" }] });
    expect(imported.json.imported).toBe(1);
    const conf = netconf(daemon.socket, { ranges: [[{ subnet: "10.65.0.0/24", gateway: "10.65.0.254" }]] });
    const add = await runPlugin(attachmentEnv("ADD", "imp1"), conf);
    expect(add.exitCode).toBe(0);
    expect(add.json.ips).toEqual([{ address: "10.65.0.7/24", gateway: "10.65.0.254" }]);
  }, 30_000);
});
