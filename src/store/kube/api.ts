/**
 * The store's requests to the API server, in its namespace: objects read, created and replaced
 * with their resourceVersion (the compare of every compare-and-swap), counted by verb so the
 * load per ADD can be measured. A request that fails for a reason that is not an answer the
 * store acts on (a conflict, "already exists", "not found") is raised as a StorageFault.
 */
import type { KubeClient } from "../../kube/client.ts";
import { AlreadyExistsError, ConflictError as KubeConflict, NotFoundError } from "../../kube/errors.ts";
import { IPAMBlocks, IPAMNamespaceUsages, IPAMNodeSubnets, type ObjectOf, type ResourceType, type WireOf } from "../../kube/resources.ts";
import { apiFault, kindMissing, mayHaveApplied } from "./faults.ts";
import { allowed } from "./rbac.ts";

/**
 * Where the store's objects live: the Kubernetes API (KubeClient), or etcd (etcd-objects.ts),
 * which answers the same requests with the same errors. The store asks nothing else of it.
 */
export type ObjectClient = Pick<KubeClient, "server" | "get" | "list" | "listAll" | "watch" | "create" | "update" | "delete">;

export const FIELD_MANAGER = "ipamd";

/** A write that lost its compare-and-swap: the object changed (or appeared, or went) since it was read. */
export const lostRace = (err: unknown): boolean => err instanceof KubeConflict || err instanceof AlreadyExistsError || (err instanceof NotFoundError && !kindMissing(err));

export class StoreApi {
  /** Requests sent, by verb (get, list, create, update, delete). */
  readonly requests = { get: 0, list: 0, create: 0, update: 0, delete: 0 };

  constructor(
    readonly client: ObjectClient,
    readonly namespace: string,
  ) {}

  /** Where the store is, as faults name it. */
  get where(): string {
    return `${this.client.server} (namespace ${this.namespace})`;
  }

  get writes(): number {
    return this.requests.create + this.requests.update + this.requests.delete;
  }

  /** Requests sent, by resource and verb ("ipamblocks update"). */
  readonly byResource = new Map<string, number>();

  /** Runs a request; failures that are not answers become StorageFaults. `unsure` is told when a failed write may have applied. */
  async call<T>(verb: keyof StoreApi["requests"], type: ResourceType, run: () => Promise<T>, unsure?: () => void): Promise<T> {
    if (!allowed(type.group, type.plural, verb)) throw new Error(`the store may not ${verb} ${type.plural} (src/store/kube/rbac.ts): a bug`);
    this.requests[verb]++;
    const key = `${type.plural} ${verb}`;
    this.byResource.set(key, (this.byResource.get(key) ?? 0) + 1);
    try {
      return await run();
    } catch (err) {
      if (lostRace(err)) throw err;
      if (unsure && mayHaveApplied(err)) unsure();
      throw apiFault(this.where, err);
    }
  }

  /**
   * The first create of a kind the API server has just been given takes it about 2 s (the
   * CRD's write path is set up then), longer than a request may take on an ADD's path: a
   * dry-run create of each kind at start takes that wait instead. Failures are left to the
   * real writes to report. (On etcd, a dry run does nothing: there is nothing to set up.)
   */
  async warmUp(): Promise<void> {
    const sample = { IPAMBlock: { space: "-", cidr: "-", node: "" }, IPAMNamespaceUsage: { pool: "-", namespace: "-" }, IPAMNodeSubnet: { pool: "-", subnet: "-", node: "" } };
    await Promise.all(
      [IPAMBlocks, IPAMNamespaceUsages, IPAMNodeSubnets].map((type) =>
        this.client
          .create(type, { metadata: { name: "warm-up", namespace: this.namespace }, spec: sample[type.kind as keyof typeof sample] } as never, { dryRun: true, timeoutMs: 15_000 })
          .catch(() => undefined),
      ),
    );
  }

  /** The object, or undefined when there is none. */
  async get<R extends ResourceType>(type: R, name: string): Promise<ObjectOf<R> | undefined> {
    try {
      return await this.call("get", type, () => this.client.get(type, name, { namespace: this.namespace }));
    } catch (err) {
      if (err instanceof NotFoundError && !kindMissing(err)) return undefined;
      throw err;
    }
  }

  list<R extends ResourceType>(type: R, labelSelector?: string) {
    return this.call("list", type, () => this.client.listAll(type, { namespace: this.namespace, labelSelector }));
  }

  /** Creates the object, or replaces the version `base` was read at; `known` as in WriteOptions. */
  write<R extends typeof IPAMBlocks | typeof IPAMNamespaceUsages>(type: R, name: string, base: ObjectOf<R> | undefined, body: { spec: WireOf<R>["spec"] }, unsure: () => void, known?: (answer: unknown) => ObjectOf<R> | undefined): Promise<ObjectOf<R>> {
    // managedFields: [{}] strips field ownership, which would otherwise repeat every field of
    // the spec in the object and so double what each watch event sends to every daemon.
    const metadata = { name, namespace: this.namespace, managedFields: [{}], ...(base ? { resourceVersion: base.metadata.resourceVersion, labels: base.metadata.labels, annotations: base.metadata.annotations } : {}) };
    const object = { ...body, metadata } as never;
    return base
      ? this.call("update", type, () => this.client.update(type, object, { fieldManager: FIELD_MANAGER, known }), unsure)
      : this.call("create", type, () => this.client.create(type, object, { fieldManager: FIELD_MANAGER, known }), unsure);
  }

  delete(type: ResourceType, name: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<void> {
    return this.call("delete", type, () => this.client.delete(type, name, { namespace: this.namespace, preconditions }));
  }
}
