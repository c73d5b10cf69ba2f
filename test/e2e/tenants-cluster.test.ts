/**
 * Tenants on each shared store (a real 3-member etcd cluster, a real kube-apiserver): two
 * daemons (two nodes), dist/ipamd as plugin and daemon. A namespace's limit holds across both
 * daemons exactly, and a reservation made through one is honoured by the other — whose memory
 * did not know it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { attachmentEnv, BINARY, cleanup, type Daemon, runPlugin } from "./harness.ts";
import { run } from "./netns.ts";
import { daemons, etcdStore, kubeStore, type SharedStore } from "./shared-stores.ts";

afterAll(cleanup);

async function twoDaemons(store: SharedStore, pools: Record<string, unknown>): Promise<Daemon[]> {
  return daemons(store, ["node-a", "node-b"], await store.scope(), { pools }, { blockPrefixV4: 28 });
}

const conf = (d: Daemon, ipam: Record<string, unknown>) => ({ cniVersion: "1.0.0", name: "podnet", type: "ipamd", ipam: { type: "ipamd", socket: d.socket, ...ipam } });
const podArgs = (namespace: string, name: string) => ({ CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}` });

/** An ADD retried while the daemon says 11 (a lost race under load), as a runtime would. */
async function add(d: Daemon, id: string, namespace: string, ipam: Record<string, unknown>) {
  for (let attempt = 0; ; attempt++) {
    const r = await runPlugin(attachmentEnv("ADD", id, "eth0", podArgs(namespace, id)), conf(d, ipam));
    if (r.json?.code !== 11 || attempt >= 5) return r;
  }
}

for (const store of [etcdStore(), kubeStore()]) describe(`tenants across two daemons on ${store.name}`, () => {
  beforeAll(() => store.start(), 120_000);

  test("maxPerNamespace is exact across daemons: of 16 concurrent ADDs of one namespace, exactly the limit succeed, the rest are 105", async () => {
    const ds = await twoDaemons(store, { tenant: { addresses: ["10.91.0.0/24"], prefix: 24, maxPerNamespace: 5 } });
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => add(ds[i % 2]!, `a${i}`, "team-a", { pool: "tenant" })));
    expect(results.filter((r) => r.exitCode === 0)).toHaveLength(5);
    for (const r of results.filter((r) => r.exitCode !== 0)) expect(r.json).toMatchObject({ code: 105 });
    // Another namespace is unaffected, on either daemon.
    expect((await add(ds[1]!, "b1", "team-b", { pool: "tenant" })).exitCode).toBe(0);
    // A DEL on one daemon makes room for an ADD on the other.
    const winner = results.findIndex((r) => r.exitCode === 0);
    expect((await runPlugin(attachmentEnv("DEL", `a${winner}`), conf(ds[winner % 2]!, {}))).exitCode).toBe(0);
    expect((await add(ds[(winner + 1) % 2]!, "a-next", "team-a", { pool: "tenant" })).exitCode).toBe(0);
    const use = JSON.parse((await run([BINARY, "pools", "--json", "--socket", ds[0]!.socket])).stdout).pools[0].namespaceUse;
    expect(use).toEqual([{ namespace: "team-a", count: 5 }, { namespace: "team-b", count: 1 }]);
  }, 60_000);

  test("a reservation made on one daemon is never handed out by the other, which fills the rest of the pool", async () => {
    const ds = await twoDaemons(store, { small: { addresses: ["10.92.0.1-10.92.0.12"], prefix: 24 } });
    // Each daemon has read the (empty) pool at start; the reservation comes after.
    const reserved = await run([BINARY, "reserve", "10.92.0.3-10.92.0.6", "--pool", "small", "--note", "routers", "--socket", ds[0]!.socket]);
    expect(reserved.exitCode).toBe(0);
    const got: string[] = [];
    for (let i = 0; i < 9; i++) {
      const r = await add(ds[1]!, `c${i}`, "team-a", { pool: "small" });
      if (r.exitCode === 0) got.push(r.json.ips[0].address);
      else expect(r.json).toMatchObject({ code: 100 });
    }
    expect(got.sort()).toEqual(["10.92.0.1/24", "10.92.0.10/24", "10.92.0.11/24", "10.92.0.12/24", "10.92.0.2/24", "10.92.0.7/24", "10.92.0.8/24", "10.92.0.9/24"]);
    const listed = JSON.parse((await run([BINARY, "reservations", "--json", "--socket", ds[1]!.socket])).stdout).reservations;
    expect(listed.map((h: { ip: string; note: string }) => [h.ip, h.note])).toEqual([
      ["10.92.0.3", "routers"],
      ["10.92.0.4", "routers"],
      ["10.92.0.5", "routers"],
      ["10.92.0.6", "routers"],
    ]);
    // The other daemon's pool report counts them as the store has them.
    expect(JSON.parse((await run([BINARY, "pools", "--json", "--socket", ds[1]!.socket])).stdout).pools[0].reserved).toBe(4);
    // Unreserved on the other daemon: free for pods again.
    expect((await run([BINARY, "unreserve", "10.92.0.3", "--socket", ds[1]!.socket])).exitCode).toBe(0);
    expect((await add(ds[0]!, "after", "team-a", { pool: "small" })).json.ips[0].address).toBe("10.92.0.3/24");
  }, 60_000);

  test("a reservation larger than one store transaction is made whole, and undone whole when refused part-way", async () => {
    const [d, other] = await twoDaemons(store, { wide: { addresses: ["10.93.0.0/24"], prefix: 24 } });
    const reserved = await run([BINARY, "reserve", "10.93.0.10-10.93.0.109", "--pool", "wide", "--note", "lab", "--socket", d!.socket]);
    expect(reserved.stdout).toContain("reserved 100 addresses");
    expect(JSON.parse((await run([BINARY, "reservations", "--json", "--socket", d!.socket])).stdout).reservations).toHaveLength(100);
    // The other daemon takes an address near the end of the next span; this daemon's memory
    // does not know, so its first pieces commit before the piece holding it is refused.
    const taken = await runPlugin(attachmentEnv("ADD", "c1", "eth0", { CNI_ARGS: "IP=10.93.0.190;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=c1" }), conf(other!, { pool: "wide" }));
    expect(taken.json.ips[0].address).toBe("10.93.0.190/24");
    const refused = await run([BINARY, "reserve", "10.93.0.110-10.93.0.200", "--pool", "wide", "--socket", d!.socket]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain("nothing was reserved");
    expect(JSON.parse((await run([BINARY, "reservations", "--json", "--socket", d!.socket])).stdout).reservations).toHaveLength(100);
    expect((await run([BINARY, "unreserve", "10.93.0.10-10.93.0.109", "--socket", d!.socket])).stdout).toContain("unreserved 100 addresses");
  }, 60_000);
});
