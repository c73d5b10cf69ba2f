/**
 * `ipamd controller` serving Cluster API IPAddressClaims on a real API server, its store on a
 * real 3-member etcd: a claim bound (finalizer, IPAddress with owners and finalizer, status)
 * and released (address freed, IPAddress gone, finalizer off), pool status counts, paused
 * claims and clusters left alone, and a pool in use kept from deletion.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GlobalInClusterIPPools, IPAddressClaimsV1beta2, IPAddressesV1beta2, genericResource } from "../../src/kube/resources.ts";
import { cleanup, waitFor } from "../e2e/harness.ts";
import { FIELD_MANAGER } from "../kube/helpers.ts";
import { boundAddress, type CapiEnv, claim, globalPool, namespacedPool, newPrefix, readyOf, startCapiEnv, startController } from "./env.ts";
import { modify } from "../../src/kube/conflict.ts";
import { NotFoundError } from "../../src/kube/errors.ts";

let env: CapiEnv;
beforeAll(async () => {
  env = await startCapiEnv(["capi-a", "capi-b"]);
}, 120_000);
afterAll(cleanup);

const gone = async (f: () => Promise<unknown>) => f().then(() => false, (err) => err instanceof NotFoundError);

describe("IPAddressClaims served by ipamd controller", () => {
  test("bound: finalizer, an IPAddress named as the claim with both owners, Ready; released: address freed for the next claim", async () => {
    const { client } = env;
    const pool = await globalPool(client, "machines", { addresses: ["10.100.0.10-10.100.0.12"], prefix: 24, gateway: "10.100.0.1" });
    const team = await namespacedPool(client, "capi-a", "team", { addresses: ["10.101.0.0/29"], prefix: 29, gateway: "10.101.0.1" });
    startController(env, newPrefix());
    await claim(client, "capi-a", "m1", { kind: "GlobalInClusterIPPool", name: "machines" });
    expect(await boundAddress(client, "capi-a", "m1")).toBe("10.100.0.10/24");
    const c = await client.get(IPAddressClaimsV1beta2, "m1", { namespace: "capi-a" });
    expect(c.metadata.finalizers).toContain("ipam.cluster.x-k8s.io/ReleaseAddress");
    expect(c.status?.addressRef?.name).toBe("m1");
    expect(await readyOf(client, "capi-a", "m1")).toMatchObject({ status: "True", reason: "Allocated" });
    const a = await client.get(IPAddressesV1beta2, "m1", { namespace: "capi-a" });
    expect(a.spec).toMatchObject({ address: "10.100.0.10", prefix: 24, gateway: "10.100.0.1", claimRef: { name: "m1" }, poolRef: { apiGroup: "ipam.cluster.x-k8s.io", kind: "GlobalInClusterIPPool", name: "machines" } });
    expect(a.metadata.finalizers).toEqual(["ipam.cluster.x-k8s.io/ProtectAddress"]);
    expect(a.metadata.ownerReferences?.map((o) => [o.kind, o.uid, o.controller ?? false])).toEqual([["IPAddressClaim", c.metadata.uid!, true], ["GlobalInClusterIPPool", pool.metadata.uid!, false]]);
    // A namespaced pool serves claims of its namespace.
    await claim(client, "capi-a", "t1", { kind: "InClusterIPPool", name: "team" });
    expect(await boundAddress(client, "capi-a", "t1")).toBe("10.101.0.2/29");
    expect((await client.get(IPAddressesV1beta2, "t1", { namespace: "capi-a" })).metadata.ownerReferences?.[1]?.uid).toBe(team.metadata.uid!);
    // Pool status counts what is taken.
    await waitFor(async () => (await client.get(GlobalInClusterIPPools, "machines")).status?.ipAddresses?.used === 1, 10_000, "pool status to count the claim");
    expect((await client.get(GlobalInClusterIPPools, "machines")).status?.ipAddresses).toEqual({ total: 3, used: 1, free: 2, outOfRange: 0 });
    // Released: the address, the IPAddress and the claim go; the next claim may take it.
    await client.delete(IPAddressClaimsV1beta2, "m1", { namespace: "capi-a" });
    await waitFor(() => gone(() => client.get(IPAddressClaimsV1beta2, "m1", { namespace: "capi-a" })), 20_000, "the claim to be gone");
    expect(await gone(() => client.get(IPAddressesV1beta2, "m1", { namespace: "capi-a" }))).toBe(true);
    for (const name of ["m2", "m3", "m4"]) await claim(client, "capi-a", name, { kind: "GlobalInClusterIPPool", name: "machines" });
    const got = await Promise.all(["m2", "m3", "m4"].map((n) => boundAddress(client, "capi-a", n)));
    expect(got.sort()).toEqual(["10.100.0.10/24", "10.100.0.11/24", "10.100.0.12/24"]);
    // Exhausted: Ready False with the engine's reason, bound once an address is free.
    await claim(client, "capi-a", "m5", { kind: "GlobalInClusterIPPool", name: "machines" });
    await waitFor(async () => (await readyOf(client, "capi-a", "m5"))?.reason === "PoolExhausted", 20_000, "m5 to be refused as exhausted");
    await client.delete(IPAddressClaimsV1beta2, "m3", { namespace: "capi-a" });
    expect(await boundAddress(client, "capi-a", "m5")).toMatch(/^10\.100\.0\.1[0-2]\/24$/);
  }, 90_000);

  test("a deleted claim's address rests for the pool's cooldown before another claim gets it", async () => {
    const { client } = env;
    await globalPool(client, "resting", { addresses: ["10.104.0.5"], prefix: 24, releaseCooldown: 3 });
    await claim(client, "capi-b", "r1", { kind: "GlobalInClusterIPPool", name: "resting" });
    expect(await boundAddress(client, "capi-b", "r1")).toBe("10.104.0.5/24");
    await client.delete(IPAddressClaimsV1beta2, "r1", { namespace: "capi-b" });
    await waitFor(() => gone(() => client.get(IPAddressClaimsV1beta2, "r1", { namespace: "capi-b" })), 20_000, "r1 to be gone");
    const released = Date.now();
    await claim(client, "capi-b", "r2", { kind: "GlobalInClusterIPPool", name: "resting" });
    await waitFor(async () => (await readyOf(client, "capi-b", "r2"))?.reason === "PoolExhausted", 20_000, "r2 to wait: the address is cooling");
    expect(await boundAddress(client, "capi-b", "r2")).toBe("10.104.0.5/24");
    expect(Date.now() - released).toBeGreaterThanOrEqual(2_500);
  }, 60_000);

  test("a claim gone without its finalizer having run (removed by hand): its address is released all the same", async () => {
    const { client } = env;
    await globalPool(client, "collected", { addresses: ["10.105.0.7"], prefix: 24 });
    await claim(client, "capi-b", "g1", { kind: "GlobalInClusterIPPool", name: "collected" });
    expect(await boundAddress(client, "capi-b", "g1")).toBe("10.105.0.7/24");
    await modify(client, IPAddressClaimsV1beta2, "g1", (c) => void (c.metadata.finalizers = []), { namespace: "capi-b" });
    await client.delete(IPAddressClaimsV1beta2, "g1", { namespace: "capi-b" });
    // The IPAddress stays (nothing runs Kubernetes' garbage collector here); the address is freed.
    await modify(client, IPAddressesV1beta2, "g1", (a) => void (a.metadata.finalizers = []), { namespace: "capi-b" });
    await client.delete(IPAddressesV1beta2, "g1", { namespace: "capi-b" });
    await claim(client, "capi-b", "g2", { kind: "GlobalInClusterIPPool", name: "collected" });
    expect(await boundAddress(client, "capi-b", "g2")).toBe("10.105.0.7/24");
  }, 60_000);

  test("an IPAddress named as the claim that says another address is replaced, never edited (Cluster API keeps its spec immutable)", async () => {
    const { client } = env;
    await globalPool(client, "replaced", { addresses: ["10.106.0.5"], prefix: 24 });
    const stale = await client.create(IPAddressesV1beta2, {
      metadata: { name: "s1", namespace: "capi-b" },
      spec: { claimRef: { name: "s1" }, poolRef: { apiGroup: "ipam.cluster.x-k8s.io", kind: "GlobalInClusterIPPool", name: "replaced" }, address: "10.106.0.99", prefix: 24 },
    }, { fieldManager: FIELD_MANAGER });
    await claim(client, "capi-b", "s1", { kind: "GlobalInClusterIPPool", name: "replaced" });
    expect(await boundAddress(client, "capi-b", "s1")).toBe("10.106.0.5/24");
    const now = await client.get(IPAddressesV1beta2, "s1", { namespace: "capi-b" });
    expect(now.spec.address).toBe("10.106.0.5");
    expect(now.metadata.uid).not.toBe(stale.metadata.uid!);
  }, 60_000);

  test("a claim of another namespace's pool, or of a pool that does not exist, is Ready=False PoolNotFound", async () => {
    const { client } = env;
    await claim(client, "capi-b", "x1", { kind: "InClusterIPPool", name: "team" });
    await waitFor(async () => (await readyOf(client, "capi-b", "x1"))?.reason === "PoolNotFound", 20_000, "x1 to be refused");
    expect(await gone(() => client.get(IPAddressesV1beta2, "x1", { namespace: "capi-b" }))).toBe(true);
  }, 30_000);

  test("paused claims and claims of paused clusters are left alone until unpaused", async () => {
    const { client } = env;
    await globalPool(client, "paused-test", { addresses: ["10.102.0.0/28"], prefix: 28 });
    const Clusters = genericResource("cluster.x-k8s.io/v1beta2", "Cluster", "clusters", true);
    await client.create(Clusters, { metadata: { name: "c1", namespace: "capi-b" }, spec: { paused: true } } as never, { fieldManager: FIELD_MANAGER });
    await claim(client, "capi-b", "p1", { kind: "GlobalInClusterIPPool", name: "paused-test" }, { annotations: { "cluster.x-k8s.io/paused": "" } });
    await claim(client, "capi-b", "p2", { kind: "GlobalInClusterIPPool", name: "paused-test" }, { clusterName: "c1" });
    await claim(client, "capi-b", "p3", { kind: "GlobalInClusterIPPool", name: "paused-test" });
    await boundAddress(client, "capi-b", "p3");
    // p3 was served after p1 and p2 were seen: they were skipped, not slow.
    expect(await readyOf(client, "capi-b", "p1")).toBeUndefined();
    expect(await readyOf(client, "capi-b", "p2")).toBeUndefined();
    await modify(client, IPAddressClaimsV1beta2, "p1", (c) => void delete c.metadata.annotations!["cluster.x-k8s.io/paused"], { namespace: "capi-b" });
    await boundAddress(client, "capi-b", "p1");
    await modify(client, Clusters, "c1", (c) => void ((c as unknown as { spec: { paused: boolean } }).spec.paused = false), { namespace: "capi-b" });
    await boundAddress(client, "capi-b", "p2");
  }, 60_000);

  test("a pool whose addresses are in use is not deleted out from under them; once free, it goes", async () => {
    const { client } = env;
    await globalPool(client, "doomed", { addresses: ["10.103.0.0/28"], prefix: 28 });
    await waitFor(async () => ((await client.get(GlobalInClusterIPPools, "doomed")).metadata.finalizers ?? []).includes("ipam.cluster.x-k8s.io/ProtectPool"), 20_000, "the pool to be protected");
    await claim(client, "capi-b", "d1", { kind: "GlobalInClusterIPPool", name: "doomed" });
    await boundAddress(client, "capi-b", "d1");
    await client.delete(GlobalInClusterIPPools, "doomed");
    await Bun.sleep(2_000); // two resyncs: the pool must still be there
    const deleting = await client.get(GlobalInClusterIPPools, "doomed");
    expect(deleting.metadata.deletionTimestamp).toBeTruthy();
    // Being deleted, it hands out nothing more.
    await claim(client, "capi-b", "d2", { kind: "GlobalInClusterIPPool", name: "doomed" });
    await waitFor(async () => (await readyOf(client, "capi-b", "d2"))?.reason === "PoolNotFound", 20_000, "d2 to be refused");
    await client.delete(IPAddressClaimsV1beta2, "d1", { namespace: "capi-b" });
    await waitFor(() => gone(() => client.get(GlobalInClusterIPPools, "doomed")), 20_000, "the pool to be deleted once free");
  }, 60_000);
});
