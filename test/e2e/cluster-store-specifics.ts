/**
 * The cluster end-to-end tests of what only one shared store has: etcd's members (a member
 * lost, the one the daemon talks to lost) and client certificates; the API server's
 * credentials, RBAC and CRDs. Called from cluster-store.test.ts inside each store's describe.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { CustomResourceDefinitions } from "../../src/kube/resources.ts";
import { installCrds, STORE_CRDS } from "../kube/helpers.ts";
import { BINARY, attachmentEnv, runPlugin, tempDir, waitFor } from "./harness.ts";
import type { EtcdCluster } from "../store/etcd-cluster.ts";
import { conf, daemons, type etcdStore, type kubeStore } from "./shared-stores.ts";

/**
 * The etcd members (indexes into endpoints) a process holds TCP connections to, read with ss,
 * the one it sent to last first. A member it moved away from (a request that timed out on a
 * loaded machine) may keep an idle keep-alive connection: the most recent send tells which
 * member the client is on now.
 */
function membersTalkedTo(endpoints: string[], pid: number): number[] {
  const ss = Bun.spawnSync(["ss", "-tnpiH", "state", "established"], { stdout: "pipe" }).stdout.toString();
  const lines = ss.split("\n");
  const lastSent = new Map<number, number>();
  lines.forEach((line, i) => {
    if (!line.includes(`pid=${pid},`)) return;
    const port = Number(line.trim().split(/\s+/)[3]?.split(":").pop());
    const ms = Number(/lastsnd:(\d+)/.exec(lines[i + 1] ?? "")?.[1] ?? Infinity);
    lastSent.set(port, Math.min(ms, lastSent.get(port) ?? Infinity));
  });
  const portOf = (i: number) => Number(new URL(endpoints[i]!).port);
  const members = endpoints.flatMap((_, i) => (lastSent.has(portOf(i)) ? [i] : []));
  return members.sort((a, b) => lastSent.get(portOf(a))! - lastSent.get(portOf(b))!);
}

/** Which member (index into the cluster's endpoints) leads it now; waits for there to be one. */
async function leaderIndex(etcd: EtcdCluster): Promise<number> {
  const c = etcd.certs!;
  const tls = { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() };
  let found = -1;
  await waitFor(async () => {
    for (const [i, e] of etcd.endpoints.entries()) {
      const status = (await fetch(`${e}/v3/maintenance/status`, { method: "POST", body: "{}", tls } as RequestInit).then((r) => r.json()).catch(() => null)) as { leader?: string; header?: { member_id?: string } } | null;
      if (status?.leader && status.leader === status.header?.member_id) found = i;
    }
    return found >= 0;
  }, 10_000);
  return found;
}

/** `ipamd serve` that is expected to refuse to start: its exit code and what it said. */
async function refusedServe(args: string[]): Promise<{ stderr: string; code: number }> {
  const dir = tempDir();
  const proc = Bun.spawn([BINARY, "serve", "--socket", join(dir, "s.sock"), "--db", join(dir, "local.db"), ...args], { stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { stderr, code };
}

export function etcdOnly(store: ReturnType<typeof etcdStore>): void {
  test("the member the daemon's etcd client is on is killed: ADDs go on through the others within the plugin's deadline", async () => {
    const etcd = store.etcd();
    const [d] = await daemons(store, ["node-f"], await store.scope());
    const add = (id: string) => runPlugin(attachmentEnv("ADD", id), conf(d!, "10.98.0.0/24"));
    expect((await add("f0")).exitCode).toBe(0);
    const on = membersTalkedTo(etcd.endpoints, d!.proc.pid);
    expect(on.length).toBeGreaterThan(0); // the first is the member it is on: the one to kill
    await etcd.kill(on[0]!);
    try {
      // No retries: each ADD must be answered within the plugin's 2.5 s, or it is code 11.
      for (let i = 1; i <= 10; i++) {
        const run = await add(`f${i}`);
        expect({ id: `f${i}`, exit: run.exitCode, out: run.exitCode === 0 ? "" : run.stdout }).toEqual({ id: `f${i}`, exit: 0, out: "" });
      }
      const now = membersTalkedTo(etcd.endpoints, d!.proc.pid);
      expect(now.length).toBeGreaterThan(0);
      expect(now).not.toContain(on[0]!);
    } finally {
      await etcd.start(on[0]!);
    }
  }, 120_000);

  test("the leader killed while the daemon is on it: a write a follower forwarded to it is sent again, within the plugin's deadline", async () => {
    const etcd = store.etcd();
    const scope = await store.scope();
    const leader = await leaderIndex(etcd);
    // The daemon talks to the first endpoint it is given: the leader.
    const leaderFirst = [etcd.endpoints[leader]!, ...etcd.endpoints.filter((_, i) => i !== leader)];
    const [d] = await daemons({ ...store, flags: (s) => store.flags(s, leaderFirst) }, ["node-l"], scope);
    const add = (id: string) => runPlugin(attachmentEnv("ADD", id), conf(d!, "10.98.1.0/24"));
    expect((await add("l0")).exitCode).toBe(0);
    await etcd.kill(leader);
    try {
      for (let i = 1; i <= 3; i++) {
        const run = await add(`l${i}`);
        expect({ id: `l${i}`, exit: run.exitCode, out: run.exitCode === 0 ? "" : run.stdout }).toEqual({ id: `l${i}`, exit: 0, out: "" });
      }
    } finally {
      await etcd.start(leader);
    }
    expect((await store.allocations(scope)).map((r) => r.containerID).sort()).toEqual(["l0", "l1", "l2", "l3"]);
  }, 120_000);

  test("a wrong or missing client certificate: the daemon refuses to start with a clear message", async () => {
    const etcd = store.etcd();
    const c = etcd.certs!;
    const serve = (args: string[]) => refusedServe(["--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), ...args]);
    const rogue = await serve(["--etcd-cacert", c.ca, "--etcd-cert", c.rogueCert, "--etcd-key", c.rogueKey]);
    expect(rogue.code).toBe(1);
    expect(rogue.stderr).toContain("cannot use etcd at");
    const missing = await serve(["--etcd-cacert", c.ca]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("need --etcd-cert and --etcd-key");
    const absent = await serve(["--etcd-cacert", c.ca, "--etcd-cert", join(tempDir(), "nope.crt"), "--etcd-key", c.clientKey]);
    expect(absent.stderr).toContain("does not exist");
    const plain = await serve(["--etcd-endpoints", "http://10.1.2.3:2379"]);
    expect(plain.stderr).toContain("plain http is only allowed on loopback");
  }, 60_000);
}

export function kubeOnly(store: ReturnType<typeof kubeStore>): void {
  test("credentials the API server refuses, or an API server without ipamd's CRDs: the daemon refuses to start, saying which", async () => {
    const kube = store.kube();
    const scope = await store.scope();
    const dir = tempDir();
    const badToken = join(dir, "kubeconfig");
    await Bun.write(badToken, (await Bun.file(kube.kubeconfigPath).text()).replace(/token: .*/, "token: not-a-token"));
    const refused = await refusedServe(["--store", "kubernetes", "--kubeconfig", badToken, "--kube-namespace", scope]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`cannot use the Kubernetes API at ${kube.url} (namespace ${scope}): the Kubernetes API server refuses ipamd's credentials`);
    const none = await refusedServe(["--store", "kubernetes", "--kubeconfig", join(dir, "missing")]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("--store kubernetes:");
    // Without the CRDs (removed here, applied again after).
    const client = store.client();
    await client.delete(CustomResourceDefinitions, "ipamblocks.ipamd.io");
    try {
      await waitFor(async () => client.get(CustomResourceDefinitions, "ipamblocks.ipamd.io").then(() => false, () => true), 30_000, "the deleted CRD to be gone");
      const noCrds = await refusedServe(["--store", "kubernetes", "--kubeconfig", kube.kubeconfigPath, "--kube-namespace", scope]);
      expect(noCrds.code).toBe(1);
      expect(noCrds.stderr).toContain("does not serve ipamd's kinds (kubectl apply -f k8s/crds/)");
    } finally {
      await reinstall(store);
    }
  }, 60_000);
}

async function reinstall(store: ReturnType<typeof kubeStore>): Promise<void> {
  const client = store.client();
  // The deleted CRD goes once its objects are gone; applying it again before would be refused.
  await waitFor(async () => client.get(CustomResourceDefinitions, "ipamblocks.ipamd.io").then(() => false, () => true), 30_000, "the deleted CRD to be gone");
  await installCrds(client, STORE_CRDS);
}
