/** Named pools end to end: config file (JSON and YAML), netconf `pool`/`pools`, SIGHUP reload under load. */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, BINARY, cleanup, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";
import { holdRequest } from "./held-request.ts";

afterEach(cleanup);

const netconf = (socket: string, ipam: Record<string, unknown>) => ({ cniVersion: "1.0.0", name: "podnet", type: "ipamd", ipam: { type: "ipamd", socket, ...ipam } });

describe("named pools from the daemon's config", () => {
  test("YAML config, dual-stack through `pools`, and a single `pool`", async () => {
    const dir = tempDir();
    const config = join(dir, "config.yaml");
    writeFileSync(config, "node: node-y\npools:\n  v4:\n    addresses: [10.70.0.0/24]\n    prefix: 24\n    gateway: 10.70.0.1\n  v6:\n    addresses: ['fd70::/64']\n    prefix: 64\n    gateway: 'fd70::1'\n");
    const daemon = await startDaemon({ dir, args: ["--config", config] });
    const dual = await runPlugin(attachmentEnv("ADD", "c1"), netconf(daemon.socket, { pools: ["v4", "v6"] }));
    expect(dual.json.ips).toEqual([
      { address: "10.70.0.2/24", gateway: "10.70.0.1" },
      { address: "fd70::2/64", gateway: "fd70::1" },
    ]);
    const single = await runPlugin(attachmentEnv("ADD", "c2"), netconf(daemon.socket, { pool: "v4" }));
    expect(single.json.ips).toEqual([{ address: "10.70.0.3/24", gateway: "10.70.0.1" }]);
    const unknown = await runPlugin(attachmentEnv("ADD", "c3"), netconf(daemon.socket, { pool: "v5" }));
    expect(unknown.json).toMatchObject({ code: 7 });
    expect(unknown.json.msg).toContain('unknown pool "v5"');
  }, 30_000);

  test("an invalid config stops the daemon with a message naming the field and why", async () => {
    const dir = tempDir();
    const cases: [unknown, RegExp][] = [
      [{ pools: { v4: { addresses: ["10.0.0.0/24"], prefx: 24 } } }, /pools\.v4\.prefx/],
      [{ pools: { v4: { addresses: ["10.0.0.0/24", "10.0.5.1"], prefix: 24 } } }, /pool v4: addresses 10\.0\.5\.1-10\.0\.5\.1 lie outside 10\.0\.0\.0\/24/],
      [{ pools: { a: { addresses: ["10.0.0.0/24"], prefix: 24 }, b: { addresses: ["10.0.0.7"], prefix: 24 } } }, /pool b: overlaps pool a/],
      [{ pools: { v4: { prefix: 24 } } }, /either addresses or supernet/],
    ];
    for (const [content, message] of cases) {
      const file = join(dir, "bad.json");
      writeFileSync(file, JSON.stringify(content));
      const proc = Bun.spawn([BINARY, "serve", "--config", file, "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db")], { stderr: "pipe" });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(code).toBe(1);
      expect(stderr).toMatch(message);
    }
  }, 30_000);

  test("SIGHUP reloads pools under load: no request fails, no address moves; a bad file keeps the old pools", async () => {
    const dir = tempDir();
    const config = join(dir, "config.json");
    const write = (pools: unknown) => writeFileSync(config, JSON.stringify({ pools }));
    write({ v4: { addresses: ["10.71.0.0/24"], prefix: 24 } });
    const daemon = await startDaemon({ dir, args: ["--config", config] });
    const conf = (pool: string) => netconf(daemon.socket, { pool });
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => runPlugin(attachmentEnv("ADD", `before-${i}`), conf("v4"))));
    expect(first.every((r) => r.exitCode === 0)).toBe(true);

    // Grow the pool and add a second one while ADDs are in flight: 8 held inside the daemon's
    // handler across the reload, and 30 plugin processes racing it.
    write({ v4: { addresses: ["10.71.0.0/24", "10.71.1.0-10.71.1.255"], prefix: 23 }, extra: { addresses: ["10.72.0.0/24"], prefix: 24 } });
    const body = (id: string) => JSON.stringify({ network: "podnet", containerID: id, ifname: "eth0", pools: ["v4"] });
    const held = await Promise.all(Array.from({ length: 8 }, (_, i) => holdRequest(daemon.socket, "/v1/cni/add", body(`held-${i}`))));
    await Promise.all(held.map((h) => h.reached));
    const during = Array.from({ length: 30 }, (_, i) => runPlugin(attachmentEnv("ADD", `during-${i}`), conf("v4")));
    daemon.proc.kill("SIGHUP");
    await waitFor(() => daemon.stderr().includes("configuration reloaded"), 10_000, "the reload to be logged");
    const answers = await Promise.all(held.map((h) => h.finish()));
    expect(answers.map((a) => `${a.status} ${a.error ?? ""}`.trim())).toEqual(held.map(() => "200"));
    const results = await Promise.all(during);
    expect(results.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
    expect((await runPlugin(attachmentEnv("ADD", "x1"), conf("extra"))).json.ips[0].address).toBe("10.72.0.1/24");

    // Every earlier allocation is where it was (answered with the grown pool's /23 now).
    const address = (cidr: string) => cidr.split("/")[0];
    for (const [i, r] of first.entries()) {
      const again = (await runPlugin(attachmentEnv("ADD", `before-${i}`), conf("v4"))).json.ips[0].address;
      expect({ i, address: address(again), prefix: again.split("/")[1] }).toEqual({ i, address: address(r.json.ips[0].address), prefix: "23" });
    }
    // An invalid file is refused by the reload; the running pools stay.
    writeFileSync(config, "{ not json");
    const reload = await fetch("http://ipamd/v1/reload", { unix: daemon.socket, method: "POST" });
    expect(reload.status).toBe(400);
    expect(((await reload.json()) as { msg: string }).msg).toContain("not valid JSON");
    expect((await runPlugin(attachmentEnv("ADD", "x2"), conf("extra"))).exitCode).toBe(0);
  }, 60_000);

  test("a bad file on SIGHUP is logged and refused: the running pools stay", async () => {
    const dir = tempDir();
    const config = join(dir, "config.json");
    const good = { v4: { addresses: ["10.73.0.0/24"], prefix: 24 } };
    writeFileSync(config, JSON.stringify({ pools: good }));
    const daemon = await startDaemon({ dir, args: ["--config", config] });
    const conf = (pool: string) => netconf(daemon.socket, { pool });
    expect((await runPlugin(attachmentEnv("ADD", "a1"), conf("v4"))).json.ips[0].address).toBe("10.73.0.1/24");
    const failures = () => daemon.stderr().split("\n").filter((l) => l.includes('"msg":"reload failed; keeping the running configuration"'));
    const bad = [
      "{ not json",
      // Valid JSON, but v4 moves and a new pool overlaps it: refused whole, nothing of it applied.
      JSON.stringify({ pools: { v4: { addresses: ["10.74.0.0/24"], prefix: 24 }, clash: { addresses: ["10.74.0.128/25"], prefix: 25 } } }),
    ];
    for (const [i, text] of bad.entries()) {
      writeFileSync(config, text);
      daemon.proc.kill("SIGHUP");
      await waitFor(() => failures().length === i + 1, 10_000, `SIGHUP with bad file ${i + 1} to be logged as a failed reload`);
      expect(failures()[i]).toContain('"level":"error"');
      const a = await runPlugin(attachmentEnv("ADD", `a${i + 2}`), conf("v4"));
      expect(a.json?.ips?.[0]?.address ?? a.stdout).toBe(`10.73.0.${i + 2}/24`);
      expect((await runPlugin(attachmentEnv("ADD", `c${i}`), conf("clash"))).json?.code).toBe(7);
    }
    const pools = Bun.spawn([BINARY, "pools", "--json", "--socket", daemon.socket], { stdout: "pipe" });
    expect((JSON.parse(await new Response(pools.stdout).text()).pools as { name: string }[]).map((p) => p.name)).toEqual(["v4"]);
    expect(daemon.stderr()).not.toContain("configuration reloaded");
    expect(daemon.proc.exitCode).toBe(null); // still serving
  }, 60_000);
});
