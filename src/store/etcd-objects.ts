/**
 * The block store's objects (kube/, after Calico's design) kept in etcd instead of the
 * Kubernetes API: the same requests answered with the same errors, so one store runs on
 * either. Each object is one key, `PREFIX + plural/namespace/name`, its value the object's
 * JSON; its resourceVersion is the key's mod revision and every write is a transaction that
 * compares it, which is the compare-and-swap the Kubernetes API does with resourceVersion.
 * A list is read at one revision (a page at a time), and a watch from the next revision
 * (etcd's watch, through the gateway; etcd-objects/watch-stream.ts) sees every change after
 * it; a revision etcd has compacted away is GoneError, as a 410 is, so an informer lists
 * again. How a value holds its object is etcd-objects/stored.ts.
 *
 * etcd keeps every revision until it is compacted, and each write of a block is a new copy of
 * it: one daemon per few minutes (compactAfterMs) compacts what is older, as kube-apiserver
 * does for its own etcd, so the database stops growing with every ADD. A watch stays open for
 * as long as etcd keeps it, so it never falls behind a compaction.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import type { DeleteOptions, Writable, WriteOptions } from "../kube/client.ts";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../kube/errors.ts";
import type { InvalidObject, ListOptions, ListPage } from "../kube/list.ts";
import type { ObjectOf, ResourceType } from "../kube/resources.ts";
import type { WatchEvent, WatchOptions } from "../kube/watch.ts";
import { type Compare, type EtcdClient, type KeyValue, type Op, prefixEnd } from "./etcd-client.ts";
import { checked, labelTerms, type Meta, objectAt, ownWrite, storedValue } from "./etcd-objects/stored.ts";
import { watchEvents } from "./etcd-objects/watch-stream.ts";
import { StorageFault, UnconfirmedWrite } from "./storage-fault.ts";

/** The namespace the block store names its objects in on etcd: the prefix is what sets stores apart there. */
export const ETCD_NAMESPACE = "ipamd";

const enc = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** How long etcd keeps the revisions a watch may resume from (the API server's default). */
export const COMPACT_AFTER_MS = 5 * 60_000;
/** Over twice etcd's interval of progress notices (ten minutes) with nothing heard: a dead connection. */
export const WATCH_SILENCE_MS = 25 * 60_000;

export class EtcdObjects {
  /** A revision written and when: compacted away once it is compactAfterMs old. */
  private mark: { revision: number; at: number } | undefined;

  constructor(
    private readonly etcd: EtcdClient,
    /** Where the objects live: every key starts with it (ends with '/'). */
    private readonly prefix: string,
    /** The endpoints, as faults name the store. */
    readonly server: string,
    private readonly compactAfterMs = COMPACT_AFTER_MS,
    /** A watch that hears nothing for this long (not even a progress notice) is ended. */
    private readonly silenceMs = WATCH_SILENCE_MS,
  ) {}

  /**
   * After a write at `revision`: every compactAfterMs, the revisions before the one this daemon
   * marked last time go. One daemon of a cluster does it per period, as kube-apiserver's
   * replicas do: the one whose transaction finds the `compacted` key unwritten since its mark
   * (the others find it written and leave it). A failure is left for the next period.
   */
  private written(revision: number): void {
    const now = performance.now();
    if (!this.mark) this.mark = { revision, at: now };
    if (now - this.mark.at < this.compactAfterMs) return;
    const before = this.mark.revision;
    this.mark = { revision, at: now };
    const key = `${this.prefix}compacted`;
    this.etcd
      .txn([{ key, target: "MOD", result: "LESS", mod_revision: before }], [{ put: { key, value: String(before) } }])
      .then(({ succeeded }) => (succeeded ? this.etcd.call("/v3/kv/compaction", { revision: String(before) }) : undefined))
      .catch(() => undefined);
  }

  private folder(type: ResourceType, namespace: string | null | undefined): string {
    return `${this.prefix}${type.plural}/${type.namespaced ? (namespace ?? "") : ""}/`;
  }

  private key(type: ResourceType, namespace: string | null | undefined, name: string | null | undefined): string {
    if (!name || name.includes("/")) throw new IpamError(ErrorCode.Internal, `${type.kind}: not an object name: ${JSON.stringify(name)}`);
    return this.folder(type, namespace) + name;
  }

  private valid<R extends ResourceType>(type: R, json: unknown): ObjectOf<R> {
    const parsed = checked(type, json);
    if ("invalid" in parsed) throw new StorageFault(this.server, "etcd holds an object ipamd cannot read", ErrorCode.IoFailure, parsed.invalid);
    return parsed.object;
  }

  private notFound(type: ResourceType, name: string): NotFoundError {
    return new NotFoundError(404, "NotFound", `${type.plural} "${name}" not found`, { reason: "NotFound", code: 404, details: { name, kind: type.plural } });
  }

  /**
   * A write's transaction. Failing to get its answer, it may have applied (an attempt before
   * the one that failed may have): UnconfirmedWrite, so the store reads the object again.
   */
  private async txn(compare: Compare[], success: Op[], failure: Op[]) {
    try {
      const result = await this.etcd.txn(compare, success, failure);
      if (result.succeeded) this.written(result.revision);
      return result;
    } catch (err) {
      const fault = this.fault(err);
      if (fault instanceof StorageFault) throw new UnconfirmedWrite(fault.store, fault.reason, fault.code, fault.detail);
      throw fault;
    }
  }

  /**
   * A write whose compare failed after it went out more than once: the object changed, maybe
   * by its own first attempt and another writer since. Not a lost race the store may act on,
   * but an unconfirmed write (it reads the object again).
   */
  private unconfirmed(type: ResourceType, name: string): UnconfirmedWrite {
    return new UnconfirmedWrite(this.server, "etcd did not confirm a write it was sent twice", ErrorCode.TryAgainLater, `${type.plural} "${name}"`);
  }

  /** etcd refusing a request (too large, malformed) is a storage fault someone has to look at. */
  private fault(err: unknown): unknown {
    if (err instanceof IpamError && !(err instanceof StorageFault)) return new StorageFault(this.server, "etcd refused the request", ErrorCode.IoFailure, err.message);
    return err;
  }

  private async read<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw this.fault(err);
    }
  }

  async get<R extends ResourceType>(type: R, name: string, options: { namespace?: string } = {}): Promise<ObjectOf<R>> {
    const [kv] = await this.read(() => this.etcd.range(this.key(type, options.namespace, name)));
    if (!kv) throw this.notFound(type, name);
    let json: unknown;
    try {
      json = objectAt(kv.value, kv.createRevision, kv.modRevision);
    } catch {
      throw new StorageFault(this.server, "etcd holds an object ipamd cannot read", ErrorCode.IoFailure, `${type.kind} ${name}: not JSON`);
    }
    return this.valid(type, json);
  }

  /** Every object of the kind (in the namespace), read at one revision; `limit` is honoured, `continue` never needed. */
  async list<R extends ResourceType>(type: R, options: ListOptions = {}): Promise<ListPage<ObjectOf<R>>> {
    const terms = labelTerms(options.labelSelector);
    if (options.fieldSelector) throw new IpamError(ErrorCode.Internal, "etcd objects: field selectors are not supported");
    // A limit is etcd's to keep when no label is asked for (the store's "can I list?" reads one).
    const { kvs, revision } = await this.read(() => this.etcd.rangePrefixAt(this.folder(type, options.namespace), terms.length ? undefined : options.limit));
    const items: ObjectOf<R>[] = [];
    const invalid: InvalidObject[] = [];
    for (const kv of kvs) {
      if (options.limit && items.length >= options.limit) break;
      let json: { metadata: Meta };
      try {
        json = objectAt(kv.value, kv.createRevision, kv.modRevision);
      } catch {
        invalid.push({ namespace: options.namespace, name: kv.key.slice(kv.key.lastIndexOf("/") + 1), resourceVersion: String(kv.modRevision), message: `${type.kind}: not JSON` });
        continue;
      }
      if (terms.some(([k, v]) => json.metadata.labels?.[k] !== v)) continue;
      const parsed = checked(type, json);
      if ("object" in parsed) items.push(parsed.object);
      else invalid.push({ namespace: json.metadata.namespace ?? undefined, name: json.metadata.name ?? undefined, resourceVersion: String(kv.modRevision), message: parsed.invalid });
    }
    return { items, invalid, resourceVersion: String(revision) };
  }

  listAll<R extends ResourceType>(type: R, options: ListOptions & { pageSize?: number } = {}): Promise<ListPage<ObjectOf<R>>> {
    return this.list(type, { ...options, limit: undefined });
  }

  /** Creates the object if no object has its name: else AlreadyExistsError. */
  async create<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>> = {}): Promise<ObjectOf<R>> {
    const key = this.key(type, options.namespace ?? object.metadata.namespace, object.metadata.name);
    const value = storedValue(type, object);
    if (options.dryRun) return this.answer(type, value, 0, 0, options);
    const result = await this.txn([{ key, target: "CREATE", result: "EQUAL", create_revision: 0 }], [{ put: { key, value } }], [{ range: { key } }]);
    if (result.succeeded) return this.answer(type, value, result.revision, result.revision, options);
    const mine = ownWrite(result.ranges[0], value);
    if (mine) return this.answer(type, value, mine.createRevision, mine.modRevision, options);
    if (result.sends > 1) throw this.unconfirmed(type, object.metadata.name!);
    throw new AlreadyExistsError(409, "AlreadyExists", `${type.plural} "${object.metadata.name}" already exists`);
  }

  /**
   * Replaces the object: with metadata.resourceVersion, only if it is still that version (else
   * ConflictError); NotFoundError when there is none.
   */
  async update<R extends ResourceType>(type: R, object: Writable<R>, options: WriteOptions<ObjectOf<R>> = {}): Promise<ObjectOf<R>> {
    const name = object.metadata.name;
    const key = this.key(type, options.namespace ?? object.metadata.namespace, name);
    const version = object.metadata.resourceVersion;
    const compare: Compare[] = version ? [{ key, target: "MOD", result: "EQUAL", mod_revision: Number(version) }] : [{ key, target: "CREATE", result: "GREATER", create_revision: 0 }];
    const value = storedValue(type, object);
    if (options.dryRun) return this.answer(type, value, 0, 0, options);
    const result = await this.txn(compare, [{ put: { key, value } }], [{ range: { key } }]);
    const mine = result.succeeded ? undefined : ownWrite(result.ranges[0], value);
    if (mine) return this.answer(type, value, mine.createRevision, mine.modRevision, options);
    if (!result.succeeded) throw result.sends > 1 ? this.unconfirmed(type, name!) : this.lost(type, name!, result.ranges[0]);
    // A txn answers its revision, not the key's create revision: the uid is the caller's copy's, if any.
    const uid = object.metadata.uid?.startsWith("etcd-") ? Number(object.metadata.uid.slice(5)) : 0;
    return this.answer(type, value, uid, result.revision, options);
  }

  /** Deletes the object if it is still the one the preconditions name; NotFoundError when there is none. */
  async delete(type: ResourceType, name: string, options: DeleteOptions = {}): Promise<void> {
    const key = this.key(type, options.namespace, name);
    if (options.dryRun) return;
    const compare: Compare[] = [{ key, target: "CREATE", result: "GREATER", create_revision: 0 }];
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid) compare.push({ key, target: "CREATE", result: "EQUAL", create_revision: uid.startsWith("etcd-") ? Number(uid.slice(5)) : -1 });
    if (resourceVersion) compare.push({ key, target: "MOD", result: "EQUAL", mod_revision: Number(resourceVersion) });
    const result = await this.txn(compare, [{ delete: { key } }], [{ range: { key } }]);
    if (result.succeeded) return;
    // Sent twice and now gone: the first attempt deleted it.
    if (result.sends > 1 && !result.ranges[0]?.length) return;
    throw result.sends > 1 ? this.unconfirmed(type, name) : this.lost(type, name, result.ranges[0]);
  }

  private lost(type: ResourceType, name: string, found: KeyValue[] | undefined): Error {
    if (!found?.length) return this.notFound(type, name);
    return new ConflictError(409, "Conflict", `${type.plural} "${name}": the object has been modified`);
  }

  private answer<R extends ResourceType>(type: R, value: string, createRevision: number, modRevision: number, options: WriteOptions<ObjectOf<R>>): ObjectOf<R> {
    const json = objectAt(value, createRevision, modRevision);
    return options.known?.(json) ?? this.valid(type, json);
  }

  /**
   * Every change after options.resourceVersion (none: after now), until the watch is stopped,
   * falls silent (returns) or breaks (throws; GoneError when that version is compacted away).
   * timeoutSeconds is not etcd's: an API server ends watches to spread them over its replicas,
   * while a watch etcd keeps open stays at the head of its revisions, so compaction never
   * overtakes it and no list is needed after an idle spell. etcd sends a progress notice every
   * ten minutes to a watch with nothing else to send, so one silent for much longer is taken
   * for a dead connection and ended; the caller watches again from where it was.
   */
  async *watch<R extends ResourceType>(type: R, options: WatchOptions<ObjectOf<R>> = {}): AsyncGenerator<WatchEvent<ObjectOf<R>>> {
    if (options.labelSelector || options.fieldSelector) throw new IpamError(ErrorCode.Internal, "etcd objects: a watch takes no selector");
    const folder = this.folder(type, options.namespace);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ...(options.signal ? [options.signal] : [])]);
    let silence: Timer | undefined;
    const heard = () => {
      clearTimeout(silence);
      silence = setTimeout(() => stop.abort(), this.silenceMs);
    };
    const from = options.resourceVersion ? Number(options.resourceVersion) + 1 : undefined;
    // Without prev_kv: it would send each change's previous copy too (a block, twice over, to
    // every daemon); a deletion is known by its key.
    const request = { create_request: { key: enc(folder), range_end: enc(prefixEnd(folder)), ...(from ? { start_revision: String(from) } : {}), progress_notify: true } };
    try {
      heard();
      const res = await this.read(() => this.etcd.stream("/v3/watch", request, signal));
      yield* watchEvents(type, res.body!, signal, this.server, options, heard);
    } catch (err) {
      // Stopped, or silent for too long: the watch simply ends.
      if (signal.aborted) return;
      throw err;
    } finally {
      clearTimeout(silence);
      stop.abort();
    }
  }
}
