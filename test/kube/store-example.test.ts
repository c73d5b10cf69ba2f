/**
 * k8s/examples/one-cidr-across-nodes-kubernetes.yaml on a real API server, with no etcd of
 * ipamd's: its Namespace and ServiceAccount (k8s/ipamd.yaml), its Role and RoleBinding and the
 * CRDs are applied for real; two daemons run with its DaemonSet's serve flags and its
 * ConfigMap's config, authenticated as the ServiceAccount (a token the API server issues
 * for it, what the kubelet mounts in the pod), and serve its netconf's pool to pods of two
 * nodes. The API server's audit log shows every request the daemons made: each one the Role
 * grants, none refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient } from "../../src/kube/client.ts";
import { applyManifest, Discovery, type Manifest, parseManifests } from "../../src/kube/manifests.ts";
import { BINARY, attachmentEnv, cleanup, type Daemon, runPlugin, startDaemon, tempDir } from "../e2e/harness.ts";
import type { KubeApiserver } from "./apiserver.ts";
import { FIELD_MANAGER, installCrds, ROOT, STORE_CRDS, startWithAdmin } from "./helpers.ts";

afterAll(cleanup);

const EXAMPLE = "k8s/examples/one-cidr-across-nodes-kubernetes.yaml";
const SERVICE_ACCOUNT = "system:serviceaccount:ipamd:ipamd";
// biome-ignore lint: manifests are free-form
type Doc = Record<string, any>;
const load = (file: string) => parseManifests(readFileSync(join(ROOT, file), "utf8"), file) as (Manifest & Doc)[];
const example = load(EXAMPLE);
const of = (kind: string) => example.find((m) => m.kind === kind)!;

let kube: KubeApiserver;
let client: KubeClient;
const dir = tempDir("ipamd-example-");
const auditLog = join(dir, "audit.log");

beforeAll(async () => {
  const policy = join(dir, "audit-policy.yaml");
  writeFileSync(policy, `apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n    users: ["${SERVICE_ACCOUNT}"]\n  - level: None\n`);
  ({ kube, client } = await startWithAdmin({ args: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`] }));
  await installCrds(client, STORE_CRDS);
  const discovery = new Discovery(client);
  const objects = [...load("k8s/ipamd.yaml").filter((m) => m.kind === "Namespace" || m.kind === "ServiceAccount"), of("Role"), of("RoleBinding")];
  for (const m of objects) await applyManifest(client, discovery, m, { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" });
}, 120_000);

/** A kubeconfig holding a token the API server issues for the example's ServiceAccount. */
async function serviceAccountKubeconfig(): Promise<string> {
  const answer = (await client.transport.request("POST", "/api/v1/namespaces/ipamd/serviceaccounts/ipamd/token", {
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  })) as { status: { token: string } };
  const path = join(dir, "sa-kubeconfig");
  // In a pod the namespace comes with the token (the ServiceAccount's own): here, the context's.
  const config = readFileSync(kube.kubeconfigPath, "utf8").replace(/token: .*/, `token: ${answer.status.token}`).replace("    cluster: ipamd-test\n", "    cluster: ipamd-test\n    namespace: ipamd\n");
  writeFileSync(path, config);
  return path;
}

/** The example's daemon on `node`: its DaemonSet's serve flags (paths moved here) and its ConfigMap's config. */
async function exampleDaemon(node: string, kubeconfig: string): Promise<Daemon> {
  const serve = of("DaemonSet").spec.template.spec.containers.find((c: Doc) => c.args?.[0] === "serve");
  const own = new Set(["--config", "--socket", "--db", "--node"]);
  const flags = (serve.args as string[]).slice(1).filter((a, i, all) => !own.has(a) && !own.has(all[i - 1]!));
  const d = tempDir();
  writeFileSync(join(d, "config.json"), of("ConfigMap").data["config.json"]);
  return startDaemon({ dir: d, args: ["--config", join(d, "config.json"), "--node", node, ...flags, "--kubeconfig", kubeconfig] });
}

describe("one CIDR across nodes on the Kubernetes API", () => {
  test("two nodes' daemons share the pool through the example's Role alone; every request they made is one it grants", async () => {
    const kubeconfig = await serviceAccountKubeconfig();
    const daemons = [await exampleDaemon("node-a", kubeconfig), await exampleDaemon("node-b", kubeconfig)];
    const netconf = JSON.parse(of("ConfigMap").data["10-ipamd.conflist"]);
    const plugin = (d: Daemon) => {
      const entry = netconf.plugins.find((p: Doc) => p.ipam?.type === "ipamd");
      return { cniVersion: netconf.cniVersion, name: netconf.name, ...entry, ipam: { ...entry.ipam, socket: d.socket } };
    };
    const add = (d: Daemon, id: string) => runPlugin(attachmentEnv("ADD", id, "eth0", { CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${id}` }), plugin(d));
    const runs = await Promise.all(daemons.flatMap((d, n) => Array.from({ length: 30 }, (_, i) => add(d, `n${n}-p${i}`))));
    expect(runs.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
    const addresses = runs.map((r) => r.json.ips[0].address as string);
    expect(new Set(addresses).size).toBe(60);
    // The pool's first 32 addresses are excluded; prefix 22 from the pool.
    for (const a of addresses) expect(a).toMatch(/^192\.168\.10[0-3]\.\d+\/22$/);
    for (const i of [0, 1, 2]) expect((await runPlugin(attachmentEnv("DEL", `n0-p${i}`), plugin(daemons[0]!))).exitCode).toBe(0);
    const gc = Bun.spawnSync([BINARY, "gc", "--json", "--socket", daemons[1]!.socket], { stdout: "pipe" });
    expect(gc.exitCode).toBe(0);
    for (const d of daemons) expect(await d.stop()).toBe(0);

    const events = readFileSync(auditLog, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.user?.username === SERVICE_ACCOUNT && e.stage !== "RequestReceived");
    const requests = new Set(events.map((e) => `${e.objectRef?.apiGroup ?? ""} ${e.objectRef?.resource} ${e.verb} ${e.objectRef?.namespace} ${e.responseStatus?.code === 403 ? "REFUSED" : "ok"}`));
    const granted = new Set(of("Role").rules.flatMap((r: Doc) => r.apiGroups.flatMap((g: string) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g} ${res} ${v} ipamd ok`)))));
    expect([...requests].filter((r) => !granted.has(r))).toEqual([]);
    // The daemons' work needed these at least: the rest (re-reads after a lost race, usage objects, subnets) come with what calls for them.
    for (const needed of ["ipamd.io ipamblocks list", "ipamd.io ipamblocks watch", "ipamd.io ipamblocks create", "ipamd.io ipamblocks update", "coordination.k8s.io leases create", "coordination.k8s.io leases update", "coordination.k8s.io leases list"]) {
      expect([...requests]).toContain(`${needed} ipamd ok`);
    }
  }, 120_000);
});
