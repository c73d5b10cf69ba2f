/**
 * List + watch, kept up: a local copy of a collection that follows the server.
 *
 * It lists (every page, at one resourceVersion), then watches from that version. A watch the
 * server ends (its timeout) or a connection that drops is resumed from the last version seen —
 * events and bookmarks both move it — so nothing is missed and nothing is listed again. Only
 * when the server no longer has that version (410 Gone: etcd compacted, or a restarted API
 * server's watch cache starts later) does it list again; the new list is compared with the
 * copy, and the differences are delivered as events, so a consumer sees every object that
 * changed or vanished meanwhile. Errors are reported and retried with back-off, never thrown:
 * the loop runs until stop(). An object that fails its schema is reported and treated as gone.
 */
import { callSafely, reportTo } from "./callbacks.ts";
import { type Clock, backoffMs, systemClock } from "./clock.ts";
import type { KubeClient } from "./client.ts";
import { GoneError } from "./errors.ts";
import type { InvalidObject } from "./list.ts";
import type { ObjectOf, ResourceType } from "./resources.ts";
import type { WatchEvent } from "./watch.ts";

/** What an informer asks of a client: a list, then a watch from its version (KubeClient, or the store's objects on etcd). */
export type Listing = Pick<KubeClient, "listAll" | "watch">;

export type InformerEvent<T> =
  | { type: "added" | "modified"; object: T }
  /**
   * The object as last delivered, gone as of resourceVersion: the deletion's own, the list's
   * that no longer had it, or the version that stopped fitting the schema. (The copy's own
   * version may be older: a change the consumer took is not in it.)
   */
  | { type: "deleted"; object: T; resourceVersion: string | undefined };

export interface InformerOptions<T> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  pageSize?: number;
  /** How long the server keeps one watch open; default a random 5-10 minutes, as client-go. */
  watchTimeoutSeconds?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  clock?: Clock;
  onEvent?: (event: InformerEvent<T>) => void;
  /** After each complete list (the first, and every re-list after a 410). */
  onSynced?: () => void;
  onInvalid?: (invalid: InvalidObject) => void;
  /** The object at this version if the consumer holds it already (see WatchOptions.known). */
  known?: (key: { namespace: string | undefined; name: string }, resourceVersion: string, object: unknown) => T | undefined;
  /**
   * Whether the consumer takes this change as it came (see WatchOptions.take): no event is
   * delivered for it, and this copy keeps the object's version before it, so a re-list
   * delivers the object again (its version differs).
   */
  take?: (key: { namespace: string | undefined; name: string }, resourceVersion: string, object: unknown) => boolean;
  /** A failed list or watch (it is retried) or a handler that threw. */
  onError?: (error: unknown) => void;
}

export interface InformerStats {
  lists: number;
  watches: number;
  /** 410s: the version was gone and the collection was listed again. */
  expired: number;
  bookmarks: number;
  /** Changes the consumer took as they came (InformerOptions.take). */
  taken: number;
  errors: number;
  resourceVersion: string | undefined;
}

export const objectKey = (o: { metadata: { namespace?: string | null; name?: string | null } }): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata.name}`;

export class Informer<R extends ResourceType> {
  readonly stats: InformerStats = { lists: 0, watches: 0, expired: 0, bookmarks: 0, taken: 0, errors: 0, resourceVersion: undefined };
  /** Resolves after the first complete list; rejects if stopped before. */
  readonly synced: Promise<void>;
  #cache = new Map<string, ObjectOf<R>>();
  #stop = new AbortController();
  #running: Promise<void> | null = null;
  /** Whether this turn's watch got anywhere (an event, or open a second); see #run. */
  #progress = false;
  #markSynced!: () => void;
  #failSynced!: (error: Error) => void;
  readonly #clock: Clock;

  constructor(
    readonly client: Listing,
    readonly type: R,
    readonly options: InformerOptions<ObjectOf<R>> = {},
  ) {
    this.#clock = options.clock ?? systemClock;
    this.synced = new Promise<void>((resolve, reject) => {
      this.#markSynced = resolve;
      this.#failSynced = reject;
    });
    this.synced.catch(() => {});
  }

  start(): this {
    this.#running ??= this.#run();
    return this;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#failSynced(new Error(`informer for ${this.type.kind} stopped before its first list`));
    await this.#running;
  }

  get(name: string, namespace?: string): ObjectOf<R> | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): ObjectOf<R>[] {
    return [...this.#cache.values()];
  }

  /**
   * Each turn lists if it must, then watches. A turn whose watch got nowhere (no event, open
   * under a second) counts as a failure and the next turn waits, with back-off; so a server
   * that keeps refusing, or keeps ending watches at once, is not hammered. A first 410 is
   * the exception: the list it calls for starts at once.
   */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      this.#progress = false;
      let error: unknown = null;
      try {
        if (this.stats.resourceVersion === undefined) await this.#relist();
        await this.#watch();
      } catch (caught) {
        error = caught;
      }
      if (signal.aborted) break;
      const gone = error instanceof GoneError;
      if (gone) {
        this.stats.expired++;
        this.stats.resourceVersion = undefined;
      } else if (error) {
        this.#report(error);
      }
      failures = this.#progress ? 0 : failures + 1;
      if (failures === 0 || (gone && failures === 1)) continue;
      const { initialMs = 200, maxMs = 30_000 } = this.options.backoff ?? {};
      await this.#clock.sleep(backoffMs(failures - 1, initialMs, maxMs), signal);
    }
  }

  /** Lists everything and delivers the differences from the copy as events. */
  async #relist(): Promise<void> {
    const { namespace, labelSelector, fieldSelector, pageSize } = this.options;
    const page = await this.client.listAll(this.type, { namespace, labelSelector, fieldSelector, pageSize, signal: this.#stop.signal });
    this.stats.lists++;
    for (const invalid of page.invalid) this.#call(() => this.options.onInvalid?.(invalid));
    const fresh = new Map(page.items.map((o) => [objectKey(o), o] as const));
    const previous = this.#cache;
    this.#cache = fresh;
    for (const [key, old] of previous) if (!fresh.has(key)) this.#emit({ type: "deleted", object: old, resourceVersion: page.resourceVersion });
    for (const [key, object] of fresh) {
      const old = previous.get(key);
      if (!old) this.#emit({ type: "added", object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.#emit({ type: "modified", object });
    }
    this.stats.resourceVersion = page.resourceVersion;
    this.#call(() => this.options.onSynced?.());
    this.#markSynced();
  }

  /** One watch, until the server ends it (or it fails). */
  async #watch(): Promise<void> {
    const { namespace, labelSelector, fieldSelector, watchTimeoutSeconds } = this.options;
    const timeoutSeconds = watchTimeoutSeconds ?? Math.round(300 + Math.random() * 300);
    this.stats.watches++;
    const openedAt = this.#clock.now();
    const events = this.client.watch(this.type, {
      namespace, labelSelector, fieldSelector, timeoutSeconds,
      resourceVersion: this.stats.resourceVersion, allowWatchBookmarks: true, signal: this.#stop.signal, known: this.options.known, take: this.options.take,
    });
    try {
      for await (const event of events) this.#apply(event);
    } finally {
      if (this.#clock.now() - openedAt >= 1000) this.#progress = true;
    }
  }

  #apply(event: WatchEvent<ObjectOf<R>>): void {
    this.#progress = true;
    if (event.resourceVersion) this.stats.resourceVersion = event.resourceVersion;
    switch (event.type) {
      case "BOOKMARK":
        this.stats.bookmarks++;
        return;
      case "TAKEN":
        this.stats.taken++;
        return;
      case "INVALID": {
        const { namespace, name, resourceVersion, message } = event;
        this.#call(() => this.options.onInvalid?.({ namespace, name, resourceVersion, message }));
        const key = namespace ? `${namespace}/${name}` : `${name}`;
        const old = this.#cache.get(key);
        if (old && this.#cache.delete(key)) this.#emit({ type: "deleted", object: old, resourceVersion });
        return;
      }
      case "DELETED":
        this.#cache.delete(objectKey(event.object));
        this.#emit({ type: "deleted", object: event.object, resourceVersion: event.resourceVersion });
        return;
      default: {
        const key = objectKey(event.object);
        const existed = this.#cache.has(key);
        this.#cache.set(key, event.object);
        this.#emit({ type: existed ? "modified" : "added", object: event.object });
      }
    }
  }

  #emit(event: InformerEvent<ObjectOf<R>>): void {
    this.#call(() => this.options.onEvent?.(event));
  }

  #call(handler: () => void): void {
    callSafely(handler, (error) => this.#report(error));
  }

  #report(error: unknown): void {
    this.stats.errors++;
    reportTo(this.options.onError, error);
  }
}
