/**
 * An operator's release names what it frees: an address held in several networks (two
 * netconfs with the same inline range) is refused with the list, and --network picks one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { attachmentEnv, BINARY, cleanup, type Daemon, netconf, runPlugin, startDaemon } from "./harness.ts";
import { run } from "./netns.ts";

afterEach(cleanup);

const cli = (daemon: Daemon, ...args: string[]) => run([BINARY, ...args, "--socket", daemon.socket]);

async function holders(daemon: Daemon, ip: string): Promise<string[]> {
  const body = (await (await fetch(`http://ipamd/v1/allocations/${ip}`, { unix: daemon.socket })).json()) as { holders: { network: string }[] };
  return body.holders.map((h) => h.network).sort();
}

describe("ipamd release in more than one network", () => {
  test("refused with the networks listed; --network releases that one only (CLI and admin API)", async () => {
    const daemon = await startDaemon();
    const ranges = [[{ subnet: "10.90.0.0/24" }]];
    for (const name of ["net-a", "net-b", "net-c"]) {
      const add = await runPlugin(attachmentEnv("ADD", `c-${name}`), netconf(daemon.socket, { ranges }, { name }));
      expect(add.json.ips[0].address).toBe("10.90.0.2/24");
    }
    const refused = await cli(daemon, "release", "10.90.0.2", "--yes");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("10.90.0.2 is held in 3 networks: net-a, net-b, net-c");
    expect(refused.stderr).toContain("--network");
    expect(await holders(daemon, "10.90.0.2")).toEqual(["net-a", "net-b", "net-c"]);

    const one = await cli(daemon, "release", "10.90.0.2", "--yes", "--network", "net-b");
    expect(one.exitCode).toBe(0);
    expect(one.stdout).toContain("released 10.90.0.2 from c-net-b/eth0");
    expect(await holders(daemon, "10.90.0.2")).toEqual(["net-a", "net-c"]);

    const api = await fetch("http://ipamd/v1/allocations/10.90.0.2/release", {
      unix: daemon.socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ confirm: true }),
    });
    expect(api.status).toBe(409);
    expect(((await api.json()) as { msg: string }).msg).toContain("held in 2 networks: net-a, net-c");
    const picked = await fetch("http://ipamd/v1/allocations/10.90.0.2/release", {
      unix: daemon.socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ confirm: true, network: "net-c" }),
    });
    expect(picked.status).toBe(200);
    expect(await holders(daemon, "10.90.0.2")).toEqual(["net-a"]);
    // One network left: no need to name it.
    expect((await cli(daemon, "release", "10.90.0.2", "--yes")).exitCode).toBe(0);
    expect(await holders(daemon, "10.90.0.2")).toEqual([]);
    expect((await cli(daemon, "release", "10.90.0.2", "--yes", "--network", "net-a")).stderr).toMatch(/not allocated/);
  }, 30_000);
});
