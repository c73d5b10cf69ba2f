/**
 * What the kube tests share: a client of ours for the test API server (as its admin, by token
 * or client certificate), applying CRD files and waiting until the server serves them, and
 * names no two tests share.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { waitFor } from "../e2e/harness.ts";
import { KubeClient } from "../../src/kube/client.ts";
import type { KubeConnection } from "../../src/kube/connection.ts";
import { Discovery, type Manifest, applyManifest, parseManifests } from "../../src/kube/manifests.ts";
import { CustomResourceDefinitions, genericResource, Namespaces } from "../../src/kube/resources.ts";
import { type KubeApiserver, type KubeApiserverOptions, startKubeApiserver } from "./apiserver.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const FIELD_MANAGER = "ipamd-test";

export function adminConnection(kube: KubeApiserver, auth: "token" | "cert" = "token"): KubeConnection {
  const base = { server: kube.url, ca: kube.caPem, namespace: "default", source: "test" };
  if (auth === "token") return { ...base, token: () => kube.token };
  return { ...base, clientCert: readFileSync(kube.clientCert, "utf8"), clientKey: readFileSync(kube.clientKey, "utf8") };
}

export function adminClient(kube: KubeApiserver, auth: "token" | "cert" = "token"): KubeClient {
  return KubeClient.connect(adminConnection(kube, auth), { timeoutMs: 10_000 });
}

/** A test API server of its own and an admin client of ours, with these namespaces created. */
export async function startWithAdmin(options: KubeApiserverOptions = {}, namespaces: string[] = []): Promise<{ kube: KubeApiserver; client: KubeClient }> {
  const kube = await startKubeApiserver(options);
  const client = adminClient(kube);
  for (const name of namespaces) await client.create(Namespaces, { metadata: { name } });
  return { kube, client };
}

let counter = 0;
/** A name unique within this test run (lower-case, DNS-safe). */
export const uniqueName = (prefix: string): string => `${prefix}-${process.pid.toString(36)}-${(++counter).toString(36)}`;

/** True once the CRD's Established condition is True. */
export async function isEstablished(client: KubeClient, name: string): Promise<boolean> {
  const crd = await client.get(CustomResourceDefinitions, name);
  return (crd.status?.conditions ?? []).some((c) => c.type === "Established" && c.status === "True");
}

/**
 * Applies CRD manifests (server-side apply), waits for Established, then until a list of
 * each served version answers: the handler can lag the condition by a moment.
 */
export async function installCrds(client: KubeClient, files: string[]): Promise<Manifest[]> {
  const discovery = new Discovery(client);
  const crds = files.flatMap((file) => parseManifests(readFileSync(resolve(ROOT, file), "utf8"), file));
  for (const crd of crds) await applyManifest(client, discovery, crd, { fieldManager: FIELD_MANAGER });
  for (const crd of crds) await waitFor(() => isEstablished(client, crd.metadata.name), 30_000, `CRD ${crd.metadata.name} to be Established`);
  for (const crd of crds) {
    const spec = (crd as unknown as { spec: { group: string; names: { plural: string; kind: string }; scope: string; versions: { name: string }[] } }).spec;
    for (const version of spec.versions) {
      const type = genericResource(`${spec.group}/${version.name}`, spec.names.kind, spec.names.plural, spec.scope === "Namespaced");
      await waitFor(() => client.list(type, { limit: 1 }).then(() => true, () => false), 10_000, `${spec.names.plural}.${spec.group}/${version.name} to be served`);
    }
  }
  return crds;
}

export const POOL_CRDS = ["k8s/crds/inclusterippools.yaml", "k8s/crds/globalinclusterippools.yaml"];
/** The Kubernetes-API store's kinds (serve --store kubernetes). */
export const STORE_CRDS = ["k8s/crds/ipamblocks.yaml", "k8s/crds/ipamnamespaceusages.yaml", "k8s/crds/ipamnodesubnets.yaml"];
export const CAPI_CRDS = ["test/kube/fixtures/capi-ipaddressclaims.yaml", "test/kube/fixtures/capi-ipaddresses.yaml"];

/**
 * Compacts the test API server's etcd at its current revision (through etcd's JSON gateway),
 * so every older resourceVersion is gone from etcd. Returns that revision.
 */
export async function compactEtcd(kube: KubeApiserver): Promise<number> {
  const post = (path: string, body: unknown) => fetch(`${kube.etcdEndpoint}${path}`, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  const status = (await (await post("/v3/maintenance/status", {})).json()) as { header?: { revision?: string } };
  const revision = Number(status.header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new Error(`etcd status had no revision: ${JSON.stringify(status)}`);
  const res = await post("/v3/kv/compaction", { revision, physical: true });
  if (!res.ok) throw new Error(`etcd compaction at ${revision} failed: ${res.status} ${await res.text()}`);
  return revision;
}
