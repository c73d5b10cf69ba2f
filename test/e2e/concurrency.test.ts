/**
 * Many plugin processes at once against one daemon, as on a node where a deployment scales
 * up: 400 concurrent ADDs into one pool all succeed with distinct addresses in range, 400
 * concurrent DELs give every one back; and a small pool under a burst hands out each
 * address exactly once and refuses the rest with a clear "exhausted" error (code 100).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { attachmentEnv, cleanup, type Daemon, netconf, type PluginRun, runPlugin, startDaemon } from "./harness.ts";

afterEach(cleanup);
afterAll(cleanup);

let unique = 0;
const ids = (n: number) => {
  const batch = unique++;
  return Array.from({ length: n }, (_, i) => `conc-${process.pid}-${batch}-${i}`);
};

async function allocations(daemon: Daemon): Promise<number> {
  const res = await fetch("http://ipamd/v1/status", { unix: daemon.socket });
  expect(res.ok).toBe(true);
  const body = (await res.json()) as { version: string; allocations: number };
  expect(typeof body.version).toBe("string");
  return body.allocations;
}

const ipv4 = (text: string) => text.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);

/** A readable summary of the runs that did not exit 0, for failure messages. */
const failures = (runs: PluginRun[]) => runs.filter((r) => r.exitCode !== 0).map((r) => r.stdout.trim() || r.stderr.trim());

describe("concurrent plugin processes", () => {
  test("400 concurrent ADDs into one /22: all succeed, 400 distinct addresses in range; 400 concurrent DELs free them all", async () => {
    const daemon = await startDaemon();
    const conf = { ...netconf(daemon.socket, { ranges: [[{ subnet: "10.30.0.0/22" }]] }), name: `conc-${process.pid}-wide` };
    const containers = ids(400);

    const added = await Promise.all(containers.map((id) => runPlugin(attachmentEnv("ADD", id), conf)));
    expect(failures(added)).toEqual([]);
    const addresses = added.map((r) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(400);
    const low = ipv4("10.30.0.2"); // .0 is the network, .1 the gateway
    const high = ipv4("10.30.3.254"); // .3.255 is the broadcast
    const outOfRange = addresses.filter((a) => {
      const [ip, prefix] = a.split("/");
      return prefix !== "22" || ipv4(ip!) < low || ipv4(ip!) > high;
    });
    expect(outOfRange).toEqual([]);
    expect(added.every((r) => r.json.ips[0].gateway === "10.30.0.1")).toBe(true);
    expect(await allocations(daemon)).toBe(400);

    // Idempotent under load too: every container asking again gets its own address back.
    const again = await Promise.all(containers.map((id) => runPlugin(attachmentEnv("ADD", id), conf)));
    expect(failures(again)).toEqual([]);
    expect(again.map((r) => r.json.ips[0].address)).toEqual(addresses);
    expect(await allocations(daemon)).toBe(400);

    const deleted = await Promise.all(containers.map((id) => runPlugin(attachmentEnv("DEL", id), conf)));
    expect(failures(deleted)).toEqual([]);
    expect(deleted.every((r) => r.stdout === "")).toBe(true);
    expect(await allocations(daemon)).toBe(0);
  }, 120_000);

  test("a /28 under a burst of 30 ADDs: exactly 13 succeed with distinct addresses, 17 fail with code 100 naming the pool; a DEL lets one more in", async () => {
    const daemon = await startDaemon();
    const conf = { ...netconf(daemon.socket, { ranges: [[{ subnet: "10.31.0.0/28" }]] }), name: `conc-${process.pid}-small` };
    const containers = ids(30);

    const runs = await Promise.all(containers.map((id) => runPlugin(attachmentEnv("ADD", id), conf)));
    const won = runs.map((r, i) => ({ r, id: containers[i]! })).filter(({ r }) => r.exitCode === 0);
    const lost = runs.filter((r) => r.exitCode !== 0);
    expect(won.length).toBe(13);
    expect(lost.length).toBe(17);

    const addresses = won.map(({ r }) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(13);
    const expected = Array.from({ length: 13 }, (_, i) => `10.31.0.${i + 2}/28`); // .2 … .14
    expect([...addresses].sort((a, b) => ipv4(a.split("/")[0]!) - ipv4(b.split("/")[0]!))).toEqual(expected);

    for (const r of lost) {
      // (fields checked one by one: Bun's toMatchObject with an asymmetric matcher overwrites the received value)
      expect(r.json?.cniVersion).toBe("1.0.0");
      expect(r.json?.code).toBe(100);
      expect(r.json?.msg).toContain("10.31.0.0/28");
      expect(r.json?.msg).toContain("exhausted");
      expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .*\(|\.ts:\d+/); // never a stack trace
    }
    expect(await allocations(daemon)).toBe(13);

    // One DEL frees exactly one address, which the next ADD gets; the pool is then full again.
    const freed = won[0]!;
    const del = await runPlugin(attachmentEnv("DEL", freed.id), conf);
    expect(del.exitCode).toBe(0);
    expect(await allocations(daemon)).toBe(12);
    const [late] = ids(1);
    const next = await runPlugin(attachmentEnv("ADD", late!), conf);
    expect({ exitCode: next.exitCode, stdout: next.stdout }).toMatchObject({ exitCode: 0 });
    expect(next.json.ips[0].address).toBe(freed.r.json.ips[0].address);
    const [another] = ids(1);
    const full = await runPlugin(attachmentEnv("ADD", another!), conf);
    expect(full.exitCode).not.toBe(0);
    expect(full.json.code).toBe(100);
    expect(await allocations(daemon)).toBe(13);
  }, 60_000);
});
