/**
 * The small Kubernetes client: typed reads and writes of the resource types in resources.ts.
 * Every answer is checked against the type's schema; a write sends apiVersion and kind
 * filled in from the type. Writes take `dryRun` (the server validates, admits and answers
 * as if it wrote, and stores nothing). Namespaced kinds use the object's namespace, else the
 * option, else the connection's default; list and watch without a namespace span them all.
 */
import { safeParse } from "valibot";
import type { KubeConnection } from "./connection.ts";
import { describeIssues, KubeInvalidResponseError } from "./errors.ts";
import { apiVersionOf, type ObjectOf, type ResourceType, resourcePath, type WireOf } from "./resources.ts";
import { type ListPage, listAllPages, type ListOptions, listPage } from "./list.ts";
import type { ObjectMeta } from "./schemas/meta.ts";
import { KubeTransport, type TransportOptions } from "./transport.ts";
import { type WatchEvent, type WatchOptions, watchObjects } from "./watch.ts";

export interface WriteOptions<T = unknown> {
  namespace?: string;
  signal?: AbortSignal;
  dryRun?: boolean;
  /** This request's deadline instead of the transport's. */
  timeoutMs?: number;
  /** Who makes the change (recorded in managedFields); required by server-side apply. */
  fieldManager?: string;
  /** Unknown or duplicate fields: Strict refuses the write, Warn (the server's default) drops them. */
  fieldValidation?: "Strict" | "Warn" | "Ignore";
  /**
   * The answer's object if the caller can tell it from the answer as sent (unchecked), without
   * checking it against the schema: what it wrote, as it holds it already. Else undefined.
   */
  known?: (answer: unknown) => T | undefined;
}

export interface ApplyOptions extends WriteOptions {
  fieldManager: string;
  /** Take over fields another manager owns instead of failing with a Conflict. */
  force?: boolean;
  /** Apply to the status subresource (the main resource ignores status). */
  subresource?: "status";
}

export interface DeleteOptions {
  namespace?: string;
  dryRun?: boolean;
  /** Delete only if the object still is this one (uid) and/or unchanged (resourceVersion). */
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  gracePeriodSeconds?: number;
}

const writeQuery = (options: WriteOptions) => ({
  dryRun: options.dryRun ? "All" : undefined,
  fieldManager: options.fieldManager,
  fieldValidation: options.fieldValidation,
});

/** An object as a caller writes it: metadata with at least a name (or generateName on create). */
export type Writable<R extends ResourceType> = Omit<WireOf<R>, "metadata" | "apiVersion" | "kind"> & { metadata: ObjectMeta; apiVersion?: string | null; kind?: string | null };

export class KubeClient {
  constructor(readonly transport: KubeTransport) {}

  static connect(connection: KubeConnection, options?: TransportOptions): KubeClient {
    return new KubeClient(new KubeTransport(connection, options));
  }

  /** The API server, as messages name it. */
  get server(): string {
    return this.transport.connection.server;
  }

  get defaultNamespace(): string {
    return this.transport.connection.namespace;
  }

  async get<R extends ResourceType>(type: R, name: string, options: { namespace?: string; signal?: AbortSignal } = {}): Promise<ObjectOf<R>> {
    const path = resourcePath(type, { namespace: this.#namespace(type, options.namespace), name });
    return this.#parse(type, await this.transport.request("GET", path, { signal: options.signal }), `GET ${path}`);
  }

  /** One page (limit/continue) or the whole collection (no limit). */
  list<R extends ResourceType>(type: R, options: ListOptions = {}): Promise<ListPage<ObjectOf<R>>> {
    return listPage(this.transport, type, options);
  }

  /** Every page, at one resourceVersion; an expired continue token starts the list again. */
  listAll<R extends ResourceType>(type: R, options: ListOptions & { pageSize?: number } = {}): Promise<ListPage<ObjectOf<R>>> {
    return listAllPages(this.transport, type, options);
  }

  watch<R extends ResourceType>(type: R, options: WatchOptions<ObjectOf<R>> = {}): AsyncGenerator<WatchEvent<ObjectOf<R>>> {
    return watchObjects(this.transport, type, options);
  }

  async create<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>> = {}): Promise<ObjectOf<R>> {
    const path = resourcePath(type, { namespace: this.#namespace(type, options.namespace ?? object.metadata.namespace) });
    const query = writeQuery(options);
    const answer = await this.transport.request("POST", path, { query, body: this.#typed(type, object), signal: options.signal, timeoutMs: options.timeoutMs });
    return options.known?.(answer) ?? this.#parse(type, answer, `POST ${path}`);
  }

  /** Server-side apply: the object states the fields this manager owns; the server merges. */
  async apply<R extends ResourceType>(type: R, object: Writable<R>, options: ApplyOptions): Promise<ObjectOf<R>> {
    const path = this.#objectPath(type, object, options.namespace, options.subresource);
    const query = { ...writeQuery(options), force: options.force ? true : undefined };
    // JSON is YAML, so the apply body needs no YAML encoder.
    const body = this.#typed(type, object);
    const answer = await this.transport.request("PATCH", path, { query, body, contentType: "application/apply-patch+yaml", signal: options.signal });
    return this.#parse(type, answer, `PATCH ${path}`);
  }

  /**
   * Replaces the object (PUT). With metadata.resourceVersion set (as a read gives it) the
   * write is optimistic: a ConflictError if anyone changed the object since. Status is ignored
   * by kinds with a status subresource; use updateStatus.
   */
  async update<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>> = {}): Promise<ObjectOf<R>> {
    return this.#put(type, object, options, undefined);
  }

  /** Replaces only the status (PUT …/status), optimistic like update. */
  async updateStatus<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>> = {}): Promise<ObjectOf<R>> {
    return this.#put(type, object, options, "status");
  }

  async delete(type: ResourceType, name: string, options: DeleteOptions = {}): Promise<void> {
    const path = resourcePath(type, { namespace: this.#namespace(type, options.namespace), name });
    const body = {
      apiVersion: "v1",
      kind: "DeleteOptions",
      ...(options.preconditions ? { preconditions: options.preconditions } : {}),
      ...(options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : {}),
      ...(options.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: options.gracePeriodSeconds } : {}),
    };
    await this.transport.request("DELETE", path, { query: { dryRun: options.dryRun ? "All" : undefined }, body });
  }

  async #put<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>>, subresource: "status" | undefined): Promise<ObjectOf<R>> {
    const path = this.#objectPath(type, object, options.namespace, subresource);
    const query = writeQuery(options);
    const answer = await this.transport.request("PUT", path, { query, body: this.#typed(type, object), signal: options.signal, timeoutMs: options.timeoutMs });
    return options.known?.(answer) ?? this.#parse(type, answer, `PUT ${path}`);
  }

  #objectPath(type: ResourceType, object: { metadata: ObjectMeta }, namespace: string | undefined, subresource?: string): string {
    const name = object.metadata.name;
    if (!name) throw new Error(`${type.kind}: metadata.name is required here`);
    return resourcePath(type, { namespace: this.#namespace(type, namespace ?? object.metadata.namespace), name, subresource });
  }

  #namespace(type: ResourceType, namespace: string | null | undefined): string | undefined {
    return type.namespaced ? (namespace ?? this.defaultNamespace) : undefined;
  }

  /** apiVersion and kind first (server-side apply requires them), from the type unless given. */
  #typed(type: ResourceType, object: { apiVersion?: string | null; kind?: string | null }): object {
    const { apiVersion, kind, ...rest } = object;
    return { apiVersion: apiVersion ?? apiVersionOf(type), kind: kind ?? type.kind, ...rest };
  }

  #parse<R extends ResourceType>(type: R, json: unknown, what: string): ObjectOf<R> {
    const parsed = safeParse(type.schema, json);
    if (!parsed.success) throw new KubeInvalidResponseError(`${what}: the ${type.kind} in the answer is not valid: ${describeIssues(parsed.issues)}`);
    return parsed.output as ObjectOf<R>;
  }
}
