/**
 * Manifests of any kind (k8s/*.yaml): parse the YAML documents, find each kind's URL through
 * API discovery, and server-side apply them — for real, or as a dry run (`dryRun: All`), in
 * which the server validates, defaults and admits each object exactly as it would store it.
 */
import { array, boolean, looseObject, nullish, safeParse, string } from "valibot";
import type { KubeClient } from "./client.ts";
import { describeIssues, KubeInvalidResponseError, NotFoundError } from "./errors.ts";
import { genericResource, type ResourceType } from "./resources.ts";
import { type AnyObject, AnyObjectSchema } from "./schemas/meta.ts";

const ManifestSchema = looseObject({ ...AnyObjectSchema.entries, apiVersion: string(), kind: string(), metadata: looseObject({ ...AnyObjectSchema.entries.metadata.entries, name: string() }) });
export type Manifest = AnyObject & { apiVersion: string; kind: string; metadata: { name: string } };

/** The objects in a YAML text of one or more documents; empty documents are skipped. */
export function parseManifests(text: string, source: string): Manifest[] {
  let parsed: unknown;
  try {
    parsed = Bun.YAML.parse(text);
  } catch (error) {
    throw new Error(`${source}: not YAML (${(error as Error).message})`);
  }
  // Bun.YAML answers an array for several documents and the document itself for one.
  const docs = (Array.isArray(parsed) ? parsed : [parsed]).filter((d) => d !== null && d !== undefined);
  return docs.map((doc, i) => {
    const result = safeParse(ManifestSchema, doc);
    if (!result.success) throw new Error(`${source}: document ${i + 1} is not a Kubernetes object: ${describeIssues(result.issues)}`);
    return result.output as Manifest;
  });
}

const ResourceListSchema = looseObject({
  resources: array(looseObject({ name: string(), kind: string(), namespaced: boolean(), verbs: nullish(array(string())) })),
});

/** apiVersion+kind → resource type, from the server's discovery documents (cached per apiVersion). */
export class Discovery {
  #lists = new Map<string, Map<string, ResourceType>>();

  constructor(readonly client: KubeClient) {}

  async resourceFor(apiVersion: string, kind: string): Promise<ResourceType> {
    const cached = this.#lists.get(apiVersion)?.get(kind);
    if (cached) return cached;
    // Not cached, or cached before a CRD that serves it was established: ask again once.
    const found = (await this.#load(apiVersion)).get(kind);
    if (!found) throw new NotFoundError(404, "NotFound", `the server has no kind ${kind} in ${apiVersion}`);
    return found;
  }

  async #load(apiVersion: string): Promise<Map<string, ResourceType>> {
    const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const parsed = safeParse(ResourceListSchema, await this.client.transport.request("GET", path));
    if (!parsed.success) throw new KubeInvalidResponseError(`GET ${path}: not an APIResourceList: ${describeIssues(parsed.issues)}`);
    const kinds = new Map<string, ResourceType>();
    // "pods/status" and the like are subresources, not kinds of their own.
    for (const r of parsed.output.resources) if (!r.name.includes("/")) kinds.set(r.kind, genericResource(apiVersion, r.kind, r.name, r.namespaced));
    this.#lists.set(apiVersion, kinds);
    return kinds;
  }
}

export interface ApplyManifestOptions {
  fieldManager: string;
  dryRun?: boolean;
  force?: boolean;
  fieldValidation?: "Strict" | "Warn" | "Ignore";
}

/** Server-side applies one manifest of any kind; resolves with the server's (or dry run's) object. */
export async function applyManifest(client: KubeClient, discovery: Discovery, manifest: Manifest, options: ApplyManifestOptions): Promise<AnyObject> {
  const type = await discovery.resourceFor(manifest.apiVersion, manifest.kind);
  return client.apply(type, manifest, options);
}
