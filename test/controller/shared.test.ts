/**
 * Claims and pods from one pool, and the controller's failures: 200 claims racing 200 pod
 * ADDs on two node daemons for a /24 (every address once), the controller killed mid-burst
 * and restarted (no claim bound twice, none lost), leader failover between two controllers,
 * a pool edited live, and a namespace selector's change picked up by the daemons.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { modify } from "../../src/kube/conflict.ts";
import { GlobalInClusterIPPools, IPAddressClaimsV1beta2, IPAddressesV1beta2, Namespaces } from "../../src/kube/resources.ts";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { attachmentEnv, cleanup, type Daemon, runPlugin, waitFor } from "../e2e/harness.ts";
import { blockAllocations, claimedBlocks, ETCD_NAMESPACE, etcdObjects } from "../e2e/shared-stores.ts";
import { boundAddress, type CapiEnv, claim, globalPool, newPrefix, startCapiEnv, startController, startNodeDaemon, stopControllers } from "./env.ts";

let env: CapiEnv;
beforeAll(async () => {
  env = await startCapiEnv(["machines", "apps", "team-x"]);
}, 120_000);
afterEach(stopControllers);
afterAll(cleanup);

const netconf = (d: Daemon, pool: string) => ({ cniVersion: "1.0.0", name: "podnet", type: "ipamd", ipam: { type: "ipamd", socket: d.socket, pool } });

/** A pod ADD as a runtime retries it: again, a little later, while the daemon answers 11 (a race lost under load). */
async function podAdd(d: Daemon, id: string, pool: string, namespace = "apps") {
  for (let attempt = 0; ; attempt++) {
    const r = await runPlugin(attachmentEnv("ADD", id, "eth0", { CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${id}` }), netconf(d, pool));
    if (r.json?.code !== 11 || attempt >= 20) return r;
    await Bun.sleep(50 * (attempt + 1));
  }
}

/** Every allocation under a prefix, as etcd has it (a new prefix holds blocks): the ground truth for "once". */
const allocations = (prefix: string) => blockAllocations(etcdObjects(new EtcdClient(env.etcd.endpoints), prefix), ETCD_NAMESPACE);

/** The claims of one test (its watch filter) that have an IPAddress: claim name → address. */
async function boundClaims(namespace: string, filter: string): Promise<Map<string, string>> {
  const list = (await env.client.listAll(IPAddressesV1beta2, { namespace, labelSelector: `cluster.x-k8s.io/watch-filter=${filter}` })).items;
  return new Map(list.map((a) => [a.spec.claimRef.name, a.spec.address]));
}

describe("claims and pods share pools through one store", () => {
  test("200 claims and 200 pod ADDs on two daemons race for a /24: every address handed out once", async () => {
    const prefix = newPrefix();
    await globalPool(env.client, "race", { addresses: ["10.110.0.0/24"], prefix: 24, gateway: "10.110.0.1" });
    startController(env, prefix, "race", "race", 30);
    const daemons = await Promise.all(["node-a", "node-b"].map((n) => startNodeDaemon(env, prefix, n)));
    const claims = Promise.all(Array.from({ length: 200 }, (_, i) => claim(env.client, "machines", `r${i}`, { kind: "GlobalInClusterIPPool", name: "race" }, { filter: "race" })));
    const pods = Promise.all(Array.from({ length: 200 }, (_, i) => podAdd(daemons[i % 2]!, `pod${i}`, "race")));
    const [, podResults] = await Promise.all([claims, pods]);
    const podIps = podResults.filter((r) => r.exitCode === 0).map((r) => r.json.ips[0].address.split("/")[0]);
    for (const r of podResults.filter((r) => r.exitCode !== 0)) expect(r.json).toMatchObject({ code: 100 });
    // 253 addresses (.0, .1 and .255 are not handed out) for 400 asks: the claims take what
    // the pods left, and the pool ends full.
    await waitFor(async () => (await boundClaims("machines", "race")).size + podIps.length >= 253, 90_000, "the claims to take every address left");
    const claimIps = [...(await boundClaims("machines", "race")).values()];
    const all = [...podIps, ...claimIps];
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(253);
    const stored = await allocations(prefix);
    expect(stored.length).toBe(253);
    expect(new Set(stored.map((a) => a.ip)).size).toBe(253);
    expect(stored.filter((a) => a.network === "cluster-api.race").length).toBe(claimIps.length);
    // The controller claimed blocks of the daemons' size (its --config), never overlapping ones.
    const blocks = await claimedBlocks(etcdObjects(new EtcdClient(env.etcd.endpoints), prefix), ETCD_NAMESPACE);
    expect(blocks.some((b) => b.node === "cluster-api")).toBe(true);
    expect(blocks.filter((b) => !b.cidr.endsWith("/28"))).toEqual([]);
  }, 240_000);

  test("the controller killed mid-burst and restarted: no claim bound twice, none lost", async () => {
    const prefix = newPrefix();
    await globalPool(env.client, "crash", { addresses: ["10.111.0.0/24"], prefix: 24 });
    const first = startController(env, prefix, "crash-1", "crash");
    const made = Promise.all(Array.from({ length: 100 }, (_, i) => claim(env.client, "machines", `k${i}`, { kind: "GlobalInClusterIPPool", name: "crash" }, { filter: "crash" })));
    await waitFor(async () => (await boundClaims("machines", "crash")).size >= 20, 60_000, "the burst to be under way");
    await first.kill9();
    await made;
    startController(env, prefix, "crash-2", "crash");
    await waitFor(async () => (await boundClaims("machines", "crash")).size === 100, 60_000, "every claim to be bound after the restart");
    const ips = [...(await boundClaims("machines", "crash")).values()];
    expect(new Set(ips).size).toBe(100);
    const stored = (await allocations(prefix)).filter((a) => a.network === "cluster-api.crash");
    expect(stored.map((a) => a.ip).sort()).toEqual([...ips].sort());
    for (let i = 0; i < 100; i++) expect((await env.client.get(IPAddressClaimsV1beta2, `k${i}`, { namespace: "machines" })).status?.addressRef?.name).toBe(`k${i}`);
  }, 180_000);

  test("leader failover: of two controllers one serves; killed, the other takes over", async () => {
    const prefix = newPrefix();
    await globalPool(env.client, "failover", { addresses: ["10.112.0.0/24"], prefix: 24 });
    const [a, b] = [startController(env, prefix, "ha-1", "ha"), startController(env, prefix, "ha-2", "ha")];
    await claim(env.client, "machines", "f1", { kind: "GlobalInClusterIPPool", name: "failover" }, { filter: "ha" });
    await boundAddress(env.client, "machines", "f1");
    const leader = a.logs().includes("leading: serving") ? a : b;
    const other = leader === a ? b : a;
    expect(other.logs()).not.toContain("leading: serving");
    await leader.kill9();
    await claim(env.client, "machines", "f2", { kind: "GlobalInClusterIPPool", name: "failover" }, { filter: "ha" });
    expect(await boundAddress(env.client, "machines", "f2", 30_000)).not.toBe(await boundAddress(env.client, "machines", "f1"));
    expect(other.logs()).toContain("leading: serving");
  }, 90_000);

  test("a pool edited live: the controller and the daemons hand out from its new addresses within seconds", async () => {
    const prefix = newPrefix();
    await globalPool(env.client, "live", { addresses: ["10.113.0.10"], prefix: 24 });
    startController(env, prefix, "live", "live");
    const daemon = await startNodeDaemon(env, prefix, "node-live");
    await claim(env.client, "machines", "l1", { kind: "GlobalInClusterIPPool", name: "live" }, { filter: "live" });
    expect(await boundAddress(env.client, "machines", "l1")).toBe("10.113.0.10/24");
    const full = await podAdd(daemon, "lp1", "live");
    expect(full.json).toMatchObject({ code: 100 });
    await modify(env.client, GlobalInClusterIPPools, "live", (p) => void (p.spec.addresses = ["10.113.0.10-10.113.0.12"]));
    await waitFor(async () => (await podAdd(daemon, "lp1", "live")).exitCode === 0, 10_000, "the daemon to serve the grown pool");
    await claim(env.client, "machines", "l2", { kind: "GlobalInClusterIPPool", name: "live" }, { filter: "live" });
    expect(await boundAddress(env.client, "machines", "l2")).toMatch(/^10\.113\.0\.1[12]\/24$/);
  }, 60_000);

  test("a namespace selector: a daemon serves a namespace once its labels match, and stops once they do not", async () => {
    const prefix = newPrefix();
    await globalPool(env.client, "selected", { addresses: ["10.114.0.0/28"], prefix: 28, namespaceSelector: { matchLabels: { team: "x" } } });
    const daemon = await startNodeDaemon(env, prefix, "node-sel");
    const refused = await podAdd(daemon, "s1", "selected", "team-x");
    expect(refused.json).toMatchObject({ code: 106 });
    await modify(env.client, Namespaces, "team-x", (ns) => void (ns.metadata.labels = { ...(ns.metadata.labels ?? {}), team: "x" }));
    await waitFor(async () => (await podAdd(daemon, "s1", "selected", "team-x")).exitCode === 0, 10_000, "the labelled namespace to be served");
    await modify(env.client, Namespaces, "team-x", (ns) => void delete ns.metadata.labels!.team);
    // A new pod each try: one that got in before the change would keep its address.
    let tries = 0;
    await waitFor(async () => (await podAdd(daemon, `s2-${tries++}`, "selected", "team-x")).json?.code === 106, 10_000, "the unlabelled namespace to be refused again");
    // The pod that was served keeps its address (out of scope now, reported, not moved).
    expect((await runPlugin(attachmentEnv("ADD", "s1", "eth0", { CNI_ARGS: "K8S_POD_NAMESPACE=team-x;K8S_POD_NAME=s1" }), netconf(daemon, "selected"))).exitCode).toBe(0);
  }, 60_000);
});
