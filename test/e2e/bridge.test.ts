/**
 * A real chain, as a runtime runs it: Debian's bridge plugin creates the bridge and the veth
 * pairs and delegates IPAM to dist/ipamd (found through CNI_PATH), which asks the daemon.
 * Two network namespaces get distinct addresses on eth0 and reach each other over the
 * bridge; DEL through the bridge gives the addresses back to the daemon. Every namespace,
 * bridge and daemon is removed even when a test fails. Needs root, iproute2, ping.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { SUPPORTED_VERSIONS } from "../../src/cni/spec.ts";
import { attachmentEnv, cleanup, type Daemon, DIST_DIR, runPlugin, startDaemon } from "./harness.ts";
import {
  addNetns,
  BRIDGE_PLUGIN,
  deleteLinkOnCleanup,
  ipv4AddressesIn,
  linkExists,
  netnsExists,
  run,
  requireRootAndTools,
  runOtherPlugin,
  supportedVersionsOf,
} from "./netns.ts";

const SUBNET = "10.99.0.0/24";
const inSubnet = (address: string) => /^10\.99\.0\.(\d+)\/24$/.test(address) && Number(address.split(".")[3]!.split("/")[0]) >= 2 && Number(address.split(".")[3]!.split("/")[0]) <= 254;

let bridgeVersions: string[] = [];
beforeAll(async () => {
  requireRootAndTools(["ip", "ping", BRIDGE_PLUGIN]);
  bridgeVersions = await supportedVersionsOf(BRIDGE_PLUGIN);
}, 30_000);
afterEach(cleanup);
afterAll(cleanup);

let unique = 0;

/** What one test creates: a daemon, a bridge and two namespaces, all with names of their own. */
async function setUp(version: string) {
  const n = unique++;
  const names = {
    network: `br-e2e-${process.pid}-${n}`,
    bridge: `ipd${process.pid}b${n}`.slice(0, 15),
    a: `ipamd-${process.pid}-${n}-a`,
    b: `ipamd-${process.pid}-${n}-b`,
  };
  const daemon = await startDaemon();
  deleteLinkOnCleanup(names.bridge); // registered before it exists: cleanup runs even if ADD half-fails
  const netnsA = await addNetns(names.a);
  const netnsB = await addNetns(names.b);
  const conf = {
    cniVersion: version,
    name: names.network,
    type: "bridge",
    bridge: names.bridge,
    isGateway: true,
    ipMasq: false,
    ipam: { type: "ipamd", socket: daemon.socket, ranges: [[{ subnet: SUBNET }]] },
  };
  const env = (command: string, containerID: string, netns: string) => attachmentEnv(command, containerID, "eth0", { CNI_NETNS: netns, CNI_PATH: DIST_DIR });
  return { names, daemon, netnsA, netnsB, conf, env };
}

async function status(daemon: Daemon): Promise<{ version: string; allocations: number }> {
  const res = await fetch("http://ipamd/v1/status", { unix: daemon.socket });
  expect(res.ok).toBe(true);
  return (await res.json()) as { version: string; allocations: number };
}

function chainTest(version: string) {
  return async () => {
    expect(bridgeVersions).toContain(version);
    expect(SUPPORTED_VERSIONS as readonly string[]).toContain(version);
    const { names, daemon, netnsA, netnsB, conf, env } = await setUp(version);
    const idA = `${names.a}-ctr`;
    const idB = `${names.b}-ctr`;

    // ADD both through the bridge plugin, which delegates to dist/ipamd.
    const addA = await runOtherPlugin(BRIDGE_PLUGIN, env("ADD", idA, netnsA), conf);
    expect({ exitCode: addA.exitCode, stderr: addA.stderr, stdout: addA.stdout }).toMatchObject({ exitCode: 0 });
    const addB = await runOtherPlugin(BRIDGE_PLUGIN, env("ADD", idB, netnsB), conf);
    expect({ exitCode: addB.exitCode, stderr: addB.stderr, stdout: addB.stdout }).toMatchObject({ exitCode: 0 });
    expect(addA.json.cniVersion).toBe(version);
    const addressA: string = addA.json.ips[0].address;
    const addressB: string = addB.json.ips[0].address;
    expect(inSubnet(addressA)).toBe(true);
    expect(inSubnet(addressB)).toBe(true);
    expect(addressA).not.toBe(addressB);
    expect(addA.json.ips[0].gateway).toBe("10.99.0.1");
    expect(await linkExists(names.bridge)).toBe(true);

    // What the plugin reported is what is really configured on eth0 inside each namespace.
    expect(await ipv4AddressesIn(names.a, "eth0")).toEqual([addressA]);
    expect(await ipv4AddressesIn(names.b, "eth0")).toEqual([addressB]);
    expect((await status(daemon)).allocations).toBe(2);

    // Traffic between the two namespaces only, over the bridge.
    const ipB = addressB.split("/")[0]!;
    const ipA = addressA.split("/")[0]!;
    const pingAB = await run(["ip", "netns", "exec", names.a, "ping", "-c", "1", "-W", "2", ipB]);
    expect({ exitCode: pingAB.exitCode, out: pingAB.stdout + pingAB.stderr }).toMatchObject({ exitCode: 0 });
    const pingBA = await run(["ip", "netns", "exec", names.b, "ping", "-c", "1", "-W", "2", ipA]);
    expect({ exitCode: pingBA.exitCode, out: pingBA.stdout + pingBA.stderr }).toMatchObject({ exitCode: 0 });

    // CHECK through the whole chain (bridge checks the interfaces, ipamd the allocation).
    if (version >= "0.4.0") {
      const check = await runOtherPlugin(BRIDGE_PLUGIN, env("CHECK", idA, netnsA), { ...conf, prevResult: addA.json });
      expect({ exitCode: check.exitCode, stdout: check.stdout, stderr: check.stderr }).toMatchObject({ exitCode: 0 });
    }

    // DEL both through the bridge: the daemon releases them, eth0 is gone from the namespaces.
    for (const [id, netns] of [[idA, netnsA], [idB, netnsB]] as const) {
      const del = await runOtherPlugin(BRIDGE_PLUGIN, env("DEL", id, netns), conf);
      expect({ exitCode: del.exitCode, stdout: del.stdout, stderr: del.stderr }).toMatchObject({ exitCode: 0 });
    }
    expect((await status(daemon)).allocations).toBe(0);
    expect((await run(["ip", "netns", "exec", names.a, "ip", "link", "show", "dev", "eth0"])).exitCode).not.toBe(0);
    if (version >= "0.4.0") {
      // Our plugin's CHECK on a released attachment fails with "unknown container" (3).
      const ipamConf = { cniVersion: version, name: names.network, ipam: conf.ipam, prevResult: addA.json };
      const gone = await runPlugin(env("CHECK", idA, netnsA), ipamConf);
      expect(gone.exitCode).not.toBe(0);
      expect(gone.json.code).toBe(3);
    }

    // The namespaces can be attached again, with addresses the daemon hands out afresh.
    const again = await runOtherPlugin(BRIDGE_PLUGIN, env("ADD", idA, netnsA), conf);
    expect({ exitCode: again.exitCode, stdout: again.stdout, stderr: again.stderr }).toMatchObject({ exitCode: 0 });
    expect(inSubnet(again.json.ips[0].address)).toBe(true);
    expect(await ipv4AddressesIn(names.a, "eth0")).toEqual([again.json.ips[0].address]);
    expect((await status(daemon)).allocations).toBe(1);
    const delAgain = await runOtherPlugin(BRIDGE_PLUGIN, env("DEL", idA, netnsA), conf);
    expect(delAgain.exitCode).toBe(0);
    expect((await status(daemon)).allocations).toBe(0);

    // A second DEL of the same attachment succeeds (the runtime may retry).
    const delTwice = await runOtherPlugin(BRIDGE_PLUGIN, env("DEL", idA, netnsA), conf);
    expect(delTwice.exitCode).toBe(0);
  };
}

describe("chained behind Debian's bridge plugin in real network namespaces", () => {
  test("the bridge plugin reports the versions it speaks, and 1.0.0 is one of them", () => {
    expect(bridgeVersions).toContain("1.0.0");
  }, 30_000);

  test("cniVersion 1.0.0: two namespaces get distinct addresses, ping each other, DEL releases both", chainTest("1.0.0"), 60_000);

  test("cniVersion 0.4.0: the same chain with the older result format", chainTest("0.4.0"), 60_000);

  test("cleanup left no namespace or bridge of ours behind", async () => {
    await cleanup();
    for (let n = 0; n < unique; n++) {
      expect(await netnsExists(`ipamd-${process.pid}-${n}-a`)).toBe(false);
      expect(await netnsExists(`ipamd-${process.pid}-${n}-b`)).toBe(false);
      expect(await linkExists(`ipd${process.pid}b${n}`.slice(0, 15))).toBe(false);
    }
  }, 30_000);
});
