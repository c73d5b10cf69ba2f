/**
 * Every manifest in k8s/ passes the API server's own checks: each YAML file's objects are
 * server-side applied with dryRun=All and fieldValidation=Strict, so the server validates,
 * defaults and admits them exactly as `kubectl apply --server-side` would, and refuses an
 * unknown or misspelt field. Namespaces and CRDs are applied for real first (a dry-run object
 * in a namespace, or of a kind, that does not exist would be refused for that alone). A
 * broken copy of the DaemonSet must fail, so this test can fail.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { cleanup, waitFor } from "../e2e/harness.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { InvalidError, KubeApiError, NotFoundError } from "../../src/kube/errors.ts";
import { applyManifest, Discovery, type Manifest, parseManifests } from "../../src/kube/manifests.ts";
import { type KubeApiserver, startKubeApiserver } from "./apiserver.ts";
import { adminClient, FIELD_MANAGER, isEstablished, ROOT } from "./helpers.ts";

afterAll(cleanup);

let kube: KubeApiserver;
let client: KubeClient;
let discovery: Discovery;

/** Every .yaml/.yml file under k8s/, relative to the repository. */
function manifestFiles(dir = join(ROOT, "k8s")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return manifestFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [relative(ROOT, path)] : [];
  }).sort();
}
const FILES = manifestFiles();
const load = (file: string): Manifest[] => parseManifests(readFileSync(join(ROOT, file), "utf8"), file);
const dryRun = (manifest: Manifest) => applyManifest(client, discovery, manifest, { fieldManager: FIELD_MANAGER, dryRun: true, fieldValidation: "Strict" });

beforeAll(async () => {
  kube = await startKubeApiserver();
  client = adminClient(kube);
  discovery = new Discovery(client);
  // What dry-run objects need to exist first: their namespaces and the CRDs of their kinds.
  const prerequisites = FILES.flatMap(load).filter((m) => m.kind === "Namespace" || m.kind === "CustomResourceDefinition");
  for (const m of prerequisites) await applyManifest(client, discovery, m, { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" });
  for (const m of prerequisites.filter((p) => p.kind === "CustomResourceDefinition")) {
    await waitFor(() => isEstablished(client, m.metadata.name), 30_000, `CRD ${m.metadata.name} to be Established`);
  }
}, 120_000);

describe("k8s/ manifests on a real API server", () => {
  test("the files checked are the ones k8s/ has", () => {
    expect(FILES).toEqual([
      "k8s/controller.yaml", "k8s/crds/globalinclusterippools.yaml", "k8s/crds/inclusterippools.yaml",
      "k8s/crds/ipamblocks.yaml", "k8s/crds/ipamnamespaceusages.yaml", "k8s/crds/ipamnodesubnets.yaml",
      "k8s/examples/one-cidr-across-nodes-kubernetes.yaml", "k8s/examples/one-cidr-across-nodes.yaml", "k8s/examples/pools-from-kubernetes.yaml", "k8s/examples/two-teams.yaml",
      "k8s/examples/unique-cidr-per-node.yaml", "k8s/ipamd.yaml",
    ]);
  });

  for (const file of FILES) {
    test(`${file}: every object passes a strict server-side dry run`, async () => {
      const manifests = load(file);
      expect(manifests.length).toBeGreaterThan(0);
      for (const manifest of manifests) {
        const answer = await dryRun(manifest).catch((error: Error) => {
          throw new Error(`${file}: ${manifest.kind} ${manifest.metadata.name} was refused: ${error.message}`);
        });
        expect({ kind: answer.kind, name: answer.metadata.name }).toEqual({ kind: manifest.kind, name: manifest.metadata.name });
      }
    });
  }

  test("the README's example pool passes too", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = /kubectl apply -f - <<'YAML'\n([\s\S]*?)\n\s*YAML\n/.exec(readme)?.[1];
    expect(example).toBeString();
    const [pool] = parseManifests(example!.replace(/^ {2}/gm, ""), "README.md");
    expect(pool?.kind).toBe("GlobalInClusterIPPool");
    await dryRun(pool!);
  });

  test("a dry run stores nothing, and a misspelt or disallowed field fails it", async () => {
    const [daemonSet] = load("k8s/ipamd.yaml").filter((m) => m.kind === "DaemonSet") as [Manifest & { spec: { template: { spec: Record<string, unknown> } } }];
    const type = await discovery.resourceFor(daemonSet.apiVersion, daemonSet.kind);
    const stored = await client.get(type, daemonSet.metadata.name, { namespace: daemonSet.metadata.namespace ?? undefined }).then(() => "stored", (e) => e);
    expect(stored).toBeInstanceOf(NotFoundError);

    const broken = (podSpec: Record<string, unknown>) => ({ ...daemonSet, spec: { ...daemonSet.spec, template: { ...daemonSet.spec.template, spec: { ...daemonSet.spec.template.spec, ...podSpec } } } });
    // Server-side apply refuses a field the kind's schema lacks whatever fieldValidation says,
    // as a 500 without a reason (the apiserver's wording, kept as it is).
    const misspelt = await dryRun(broken({ hostNetwrk: true })).then(() => null, (e) => e);
    expect(misspelt).toBeInstanceOf(KubeApiError);
    expect(misspelt.message).toContain(".spec.template.spec.hostNetwrk: field not declared in schema");
    // Well-formed but not allowed: a DaemonSet's pods must restart.
    const invalid = await dryRun(broken({ restartPolicy: "Never" })).then(() => null, (e) => e);
    expect(invalid).toBeInstanceOf(InvalidError);
    expect(invalid.message).toContain("spec.template.spec.restartPolicy: Unsupported value");
  });
});
