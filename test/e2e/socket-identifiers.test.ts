/**
 * The socket accepts exactly the identifiers the plugin accepts: a local client speaking the
 * protocol directly cannot slip in a container ID or interface name the CNI spec forbids, and
 * is answered with the plugin's own code and words.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { attachmentEnv, cleanup, type Daemon, netconf, runPlugin, startDaemon } from "./harness.ts";

afterEach(cleanup);

async function post(daemon: Daemon, path: string, body: unknown): Promise<{ code?: number; msg?: string }> {
  const res = await fetch(`http://ipamd${path}`, { unix: daemon.socket, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return (await res.json()) as { code?: number; msg?: string };
}

describe("identifiers on the socket", () => {
  test("a container ID or interface name the plugin refuses is refused by the daemon with the same code and message", async () => {
    const daemon = await startDaemon();
    const ranges = [[{ subnet: "10.67.0.0/24" }]];
    for (const [containerID, ifname, variable] of [
      ["x/eth0", "a", "CNI_CONTAINERID"],
      ["-x", "eth0", "CNI_CONTAINERID"],
      ["x", "eth0/a", "CNI_IFNAME"],
      ["x", "a-very-long-interface", "CNI_IFNAME"],
      ["x", "..", "CNI_IFNAME"],
    ] as const) {
      const plugin = await runPlugin(attachmentEnv("ADD", containerID, ifname), netconf(daemon.socket, { ranges }));
      expect(plugin.json.code).toBe(4);
      expect(plugin.json.msg.startsWith(variable)).toBe(true);
      for (const path of ["/v1/cni/add", "/v1/cni/del", "/v1/cni/check"]) {
        const answer = await post(daemon, path, { network: "testnet", containerID, ifname, ranges });
        expect({ path, containerID, ifname, ...answer }).toEqual({ path, containerID, ifname, code: 4, msg: plugin.json.msg });
      }
    }
    // Nothing was allocated by any of them.
    const listed = (await (await fetch("http://ipamd/v1/allocations", { unix: daemon.socket })).json()) as { allocations: unknown[] };
    expect(listed.allocations).toEqual([]);
  }, 30_000);
});
