/**
 * Tenants end to end, with dist/ipamd as plugin and daemon on the embedded store: namespace-
 * and node-scoped pools, default pools for a netconf that names none, fallback groups, the
 * per-namespace limit, overlapping address spaces, reservations, and a reload that tightens a
 * rule. (The same on the shared stores, across two daemons: tenants-cluster.test.ts.)
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, BINARY, cleanup, type Daemon, runPlugin, startDaemon, tempDir } from "./harness.ts";
import { run } from "./netns.ts";

afterEach(cleanup);

const cli = (daemon: Daemon, ...args: string[]) => run([BINARY, ...args, "--socket", daemon.socket]);

/** A daemon with this config (written as JSON); its node is `node` (core-1 unless given). */
async function daemonWith(config: Record<string, unknown>, node = "core-1"): Promise<{ daemon: Daemon; rewrite: (next: Record<string, unknown>) => Promise<void> }> {
  const dir = tempDir();
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(config));
  const daemon = await startDaemon({ dir, args: ["--config", file, "--node", node] });
  const rewrite = async (next: Record<string, unknown>) => {
    writeFileSync(file, JSON.stringify(next));
    const reloaded = await cli(daemon, "reload");
    expect(reloaded.exitCode).toBe(0);
  };
  return { daemon, rewrite };
}

/** The netconf of network `podnet`: the given ipam keys only (no ranges unless given). */
const conf = (daemon: Daemon, ipam: Record<string, unknown> = {}) => ({ cniVersion: "1.0.0", name: "podnet", type: "ipamd", ipam: { type: "ipamd", socket: daemon.socket, ...ipam } });

/** ADD for a pod of `namespace` (none: a runtime without Kubernetes, as podman). */
const add = (daemon: Daemon, id: string, namespace: string | null, ipam: Record<string, unknown> = {}) =>
  runPlugin(attachmentEnv("ADD", id, "eth0", namespace === null ? {} : { CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${id}` }), conf(daemon, ipam));
const del = (daemon: Daemon, id: string) => runPlugin(attachmentEnv("DEL", id), conf(daemon));
const addresses = (r: { json: { ips?: { address: string }[] } }) => (r.json.ips ?? []).map((ip) => ip.address);

const pools = async (daemon: Daemon) => JSON.parse((await cli(daemon, "pools", "--json")).stdout).pools as Record<string, any>[];

describe("which pools a pod may use", () => {
  const config = {
    pools: {
      "team-a-v4": { addresses: ["10.81.0.0/24"], prefix: 24, namespaces: ["team-a"] },
      "edge-v4": { addresses: ["10.82.0.0/24"], prefix: 24, nodes: ["edge-*"] },
      "shared-v4": { addresses: ["10.80.0.0/24"], prefix: 24 },
      "shared-v6": { addresses: ["fd80::/64"], prefix: 64 },
    },
    defaultPools: [["edge-v4", "shared-v4"], "shared-v6"],
  };

  test("a netconf naming no pool: the namespace's pools first, then the defaults (dual-stack); out-of-scope pools are skipped", async () => {
    const { daemon } = await daemonWith(config);
    expect(addresses(await add(daemon, "a1", "team-a"))).toEqual(["10.81.0.1/24", "fd80::1/64"]);
    // team-b has no pools of its own; edge-v4 does not serve node core-1, so shared-v4 does.
    expect(addresses(await add(daemon, "b1", "team-b"))).toEqual(["10.80.0.1/24", "fd80::2/64"]);
    // No K8S_POD_NAMESPACE (podman, nerdctl): the cluster-wide defaults.
    expect(addresses(await add(daemon, "p1", null))).toEqual(["10.80.0.2/24", "fd80::3/64"]);
  }, 30_000);

  test("naming a pool scoped to other namespaces or nodes is refused with 106, naming the pod's namespace and the pool", async () => {
    const { daemon } = await daemonWith(config);
    const other = await add(daemon, "b1", "team-b", { pool: "team-a-v4" });
    expect(other.json).toMatchObject({ code: 106 });
    expect(other.json.msg).toContain("pool team-a-v4 does not serve namespace team-b");
    const none = await add(daemon, "p1", null, { pool: "team-a-v4" });
    expect(none.json).toMatchObject({ code: 106 });
    expect(none.json.msg).toContain("gave no K8S_POD_NAMESPACE");
    const node = await add(daemon, "a1", "team-a", { pool: "edge-v4" });
    expect(node.json).toMatchObject({ code: 106 });
    expect(node.json.msg).toContain("does not serve node core-1");
    // The same pool on an edge node serves.
    const { daemon: edge } = await daemonWith(config, "edge-7");
    expect(addresses(await add(edge, "e1", "team-b", { pool: "edge-v4" }))).toEqual(["10.82.0.1/24"]);
  }, 30_000);

  test("no defaultPools and a netconf naming nothing: 7, naming the key to set", async () => {
    const { daemon } = await daemonWith({ pools: { v4: { addresses: ["10.80.0.0/24"], prefix: 24 } } });
    const refused = await add(daemon, "x", "team-b");
    expect(refused.json).toMatchObject({ code: 7 });
    expect(refused.json.msg).toContain("defaultPools");
  }, 30_000);
});

describe("fallback groups and limits", () => {
  test("a fallback group takes from its first pool with a free address; all full is 100 naming each", async () => {
    const { daemon } = await daemonWith({ pools: { small: { addresses: ["10.83.0.1-10.83.0.2"], prefix: 24 }, big: { addresses: ["10.84.0.1-10.84.0.2"], prefix: 24 } } });
    const group = { pools: [["small", "big"]] };
    const got = [];
    for (const id of ["c1", "c2", "c3", "c4"]) got.push(...addresses(await add(daemon, id, "team-a", group)));
    expect(got).toEqual(["10.83.0.1/24", "10.83.0.2/24", "10.84.0.1/24", "10.84.0.2/24"]);
    const full = await add(daemon, "c5", "team-a", group);
    expect(full.json).toMatchObject({ code: 100 });
    expect(full.json.msg).toContain("pool small is exhausted");
    expect(full.json.msg).toContain("pool big is exhausted");
    // A freed address in the first pool is taken before the second's.
    expect((await del(daemon, "c1")).exitCode).toBe(0);
    expect((await del(daemon, "c3")).exitCode).toBe(0);
    expect(addresses(await add(daemon, "c6", "team-a", group))).toEqual(["10.83.0.1/24"]);
  }, 30_000);

  test("maxPerNamespace: the limit's next ADD is 105 naming namespace, pool and limit; others are unaffected; a DEL makes room; a fallback takes over", async () => {
    const { daemon } = await daemonWith({ pools: { tenant: { addresses: ["10.85.0.0/24"], prefix: 24, maxPerNamespace: 2 }, spill: { addresses: ["10.86.0.0/24"], prefix: 24 } } });
    for (const id of ["a1", "a2"]) expect((await add(daemon, id, "team-a", { pool: "tenant" })).exitCode).toBe(0);
    const refused = await add(daemon, "a3", "team-a", { pool: "tenant" });
    expect(refused.json).toMatchObject({ code: 105 });
    expect(refused.json.msg).toContain("namespace team-a holds 2 of pool tenant's addresses, its limit (maxPerNamespace) is 2");
    expect((await add(daemon, "b1", "team-b", { pool: "tenant" })).exitCode).toBe(0);
    expect(addresses(await add(daemon, "a3", "team-a", { pools: [["tenant", "spill"]] }))).toEqual(["10.86.0.1/24"]);
    expect((await del(daemon, "a1")).exitCode).toBe(0);
    expect((await add(daemon, "a4", "team-a", { pool: "tenant" })).exitCode).toBe(0);
    const report = (await pools(daemon)).find((p) => p.name === "tenant")!;
    expect(report).toMatchObject({ maxPerNamespace: 2, namespacesUsing: 2, namespaceUse: [{ namespace: "team-a", count: 2 }, { namespace: "team-b", count: 1 }] });
    const metrics = await (await fetch("http://ipamd/metrics", { unix: daemon.socket })).text();
    expect(metrics).toContain('ipamd_namespace_allocated_addresses{pool="tenant",namespace="team-a"} 2');
    expect(metrics).toContain('ipamd_pool_namespace_limit_addresses{pool="tenant"} 2');
    const listed = await cli(daemon, "allocations", "--namespace", "team-b");
    expect(listed.stdout).toContain("10.85.0.3/24");
    expect(listed.stdout).not.toContain("team-a/");
  }, 30_000);
});

describe("address spaces", () => {
  test("pools of two spaces overlap: each hands out the same address once; release asks which, --space picks", async () => {
    const { daemon } = await daemonWith({
      pools: { red: { addresses: ["10.87.0.0/24"], prefix: 24, space: "red" }, blue: { addresses: ["10.87.0.0/24"], prefix: 24, space: "blue" } },
    });
    expect(addresses(await add(daemon, "r1", "team-a", { pool: "red" }))).toEqual(["10.87.0.1/24"]);
    expect(addresses(await add(daemon, "b1", "team-a", { pool: "blue" }))).toEqual(["10.87.0.1/24"]);
    expect(addresses(await add(daemon, "r2", "team-a", { pool: "red" }))).toEqual(["10.87.0.2/24"]);
    const refused = await cli(daemon, "release", "10.87.0.1", "--yes");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("held in 2 places");
    expect(refused.stderr).toContain("--space");
    expect((await cli(daemon, "release", "10.87.0.1", "--yes", "--space", "red")).exitCode).toBe(0);
    const holders = JSON.parse((await cli(daemon, "show", "10.87.0.1", "--json")).stdout).holders;
    expect(holders.map((h: { pool: string }) => h.pool)).toEqual(["blue"]);
    expect((await pools(daemon)).map((p) => [p.name, p.space, p.used])).toEqual([["red", "red", 1], ["blue", "blue", 1]]);
  }, 30_000);

  test("within one space, an overlap is refused at start", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ pools: { a: { addresses: ["10.87.0.0/24"], prefix: 24, space: "red" }, b: { addresses: ["10.87.0.9"], prefix: 24, space: "red" } } }));
    const proc = Bun.spawn([BINARY, "serve", "--config", file, "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db")], { stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(1);
    expect(stderr).toContain("pool b: overlaps pool a at 10.87.0.9 in space red");
  }, 30_000);
});

describe("reservations", () => {
  test("reserved addresses are never handed out, refused while held, shown with who and why, and free again once unreserved", async () => {
    const { daemon } = await daemonWith({ pools: { v4: { addresses: ["10.88.0.1-10.88.0.6"], prefix: 24 } } });
    expect(addresses(await add(daemon, "c1", "team-a", { pool: "v4" }))).toEqual(["10.88.0.1/24"]);
    const held = await cli(daemon, "reserve", "10.88.0.1-10.88.0.2", "--pool", "v4", "--note", "VIP");
    expect(held.exitCode).not.toBe(0);
    expect(held.stderr).toContain("10.88.0.1 is allocated or held already");
    const reserved = await cli(daemon, "reserve", "10.88.0.2-10.88.0.3", "--pool", "v4", "--note", "VIP for ingress", "--by", "alice");
    expect(reserved.stdout).toContain("reserved 2 addresses in pool v4");
    // Dynamic ADDs skip them; a static request for one is refused.
    expect(addresses(await add(daemon, "c2", "team-a", { pool: "v4" }))).toEqual(["10.88.0.4/24"]);
    const wanted = await runPlugin(attachmentEnv("ADD", "c3", "eth0", { CNI_ARGS: "IP=10.88.0.3" }), conf(daemon, { pool: "v4" }));
    expect(wanted.json).toMatchObject({ code: 101 });
    const shown = await cli(daemon, "show", "10.88.0.3");
    expect(shown.stdout).toContain("reserved");
    expect(shown.stdout).toContain("VIP for ingress");
    expect(shown.stdout).toContain("reserved in pool v4 by alice: VIP for ingress");
    expect((await pools(daemon))[0]).toMatchObject({ reserved: 2, used: 2 });
    expect(await (await fetch("http://ipamd/metrics", { unix: daemon.socket })).text()).toContain('ipamd_pool_reserved_addresses{pool="v4",kind="named"} 2');
    // release leaves a reservation alone and says how to end it.
    expect((await cli(daemon, "release", "10.88.0.3", "--yes")).stderr).toContain("ipamd unreserve");
    expect((await cli(daemon, "unreserve", "10.88.0.2-10.88.0.3", "--by", "bob")).stdout).toContain("unreserved 2 addresses");
    expect(addresses(await add(daemon, "c4", "team-a", { pool: "v4" }))).toEqual(["10.88.0.5/24"]);
    const history = JSON.parse((await cli(daemon, "show", "10.88.0.3", "--json")).stdout).history.map((e: { kind: string; cause: string }) => [e.kind, e.cause]);
    expect(history).toEqual([
      ["unreserved", "unreserved in pool v4 by bob: VIP for ingress"],
      ["reserved", "reserved in pool v4 by alice: VIP for ingress"],
    ]);
  }, 30_000);

  test("a reservation outlives a restart", async () => {
    const { daemon } = await daemonWith({ pools: { v4: { addresses: ["10.88.0.1-10.88.0.3"], prefix: 24 } } });
    expect((await cli(daemon, "reserve", "10.88.0.1", "--pool", "v4")).exitCode).toBe(0);
    await daemon.stop();
    const again = await startDaemon({ dir: daemon.dir, args: ["--config", join(daemon.dir, "config.json"), "--node", "core-1"] });
    expect(addresses(await add(again, "c1", "team-a", { pool: "v4" }))).toEqual(["10.88.0.2/24"]);
    expect(JSON.parse((await cli(again, "reservations", "--json")).stdout).reservations.map((h: { ip: string }) => h.ip)).toEqual(["10.88.0.1"]);
  }, 30_000);
});

describe("a reload that tightens a rule", () => {
  test("allocations the new rules no longer allow stay, and are reported; new ADDs follow the new rules", async () => {
    const tenant = (namespaces: string[], maxPerNamespace: number) => ({ pools: { t: { addresses: ["10.89.0.0/24"], prefix: 24, namespaces, maxPerNamespace } } });
    const { daemon, rewrite } = await daemonWith(tenant(["team-a", "team-b"], 3));
    for (const id of ["a1", "a2", "a3"]) expect((await add(daemon, id, "team-a", { pool: "t" })).exitCode).toBe(0);
    expect(addresses(await add(daemon, "b1", "team-b", { pool: "t" }))).toEqual(["10.89.0.4/24"]);
    await rewrite(tenant(["team-a"], 2));
    const report = (await pools(daemon))[0]!;
    expect(report.outOfScope).toEqual({ namespaces: [{ namespace: "team-b", count: 1 }], overLimit: [{ namespace: "team-a", count: 3 }], thisNode: 0 });
    expect((await pools(daemon))[0]).toMatchObject({ used: 4 });
    expect((await cli(daemon, "pools")).stdout).toContain("team-b 1 (not served)");
    expect((await add(daemon, "b2", "team-b", { pool: "t" })).json).toMatchObject({ code: 106 });
    expect((await add(daemon, "a4", "team-a", { pool: "t" })).json).toMatchObject({ code: 105 });
    // An existing attachment is answered as it was; its DEL frees it.
    const again = await add(daemon, "b1", "team-b", { pool: "t" });
    expect(again.json).toMatchObject({ ips: [{ address: "10.89.0.4/24" }] });
    expect((await del(daemon, "b1")).exitCode).toBe(0);
    expect((await pools(daemon))[0]!.outOfScope.namespaces).toEqual([]);
  }, 30_000);

  test("a pool moved to another space while its addresses are held is refused (they would be handed out twice); once released, it moves", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    const write = (space?: string) => writeFileSync(file, JSON.stringify({ pools: { v4: { addresses: ["10.89.1.1-10.89.1.3"], prefix: 24, ...(space ? { space } : {}) } } }));
    write();
    const daemon = await startDaemon({ dir, args: ["--config", file] });
    expect(addresses(await add(daemon, "c1", "team-a", { pool: "v4" }))).toEqual(["10.89.1.1/24"]);
    write("red");
    const refused = await cli(daemon, "reload");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("pool v4 (space red) would hand out 10.89.1.1, still held in space default");
    // The running config stands: the next ADD is from the same space, never 10.89.1.1 again.
    expect(addresses(await add(daemon, "c2", "team-a", { pool: "v4" }))).toEqual(["10.89.1.2/24"]);
    for (const id of ["c1", "c2"]) expect((await del(daemon, id)).exitCode).toBe(0);
    expect((await cli(daemon, "reload")).exitCode).toBe(0);
    expect((await pools(daemon))[0]).toMatchObject({ space: "red", used: 0 });
  }, 30_000);
});
