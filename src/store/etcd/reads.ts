/**
 * The etcd store's reads beyond an attachment lookup: admin lists, who holds an address, a
 * node's allocations, history. Each starts from the secondary key that narrows it most (see
 * layout.ts), so it reads about as many keys as its answer holds; only a list with no such
 * field (all allocations, a free-text search) walks a/ in address order, a page at a time.
 */
import { type EtcdClient, type KeyValue, prefixEnd } from "../etcd-client.ts";
import { type AllocationFilter, type AllocationRecord, type HistoryEvent, type HistoryFilter, matchesFilter } from "../store.ts";
import { MAX_OPS } from "./commit.ts";
import { addressPart, eventTime, type Layout, part } from "./layout.ts";
import { eventsOf, isHold, parseValue, recordsOf } from "./values.ts";

/** Keys read per range request when a list walks a prefix. */
const CHUNK = 500;

export class EtcdReads {
  constructor(
    private readonly client: EtcdClient,
    private readonly L: Layout,
  ) {}

  /** The values of many keys, in order (undefined where a key is gone), in shared read-only transactions. */
  async values(keys: string[]): Promise<(KeyValue | undefined)[]> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += MAX_OPS) batches.push(keys.slice(i, i + MAX_OPS));
    const answers = await Promise.all(batches.map((batch) => this.client.txn([], batch.map((key) => ({ range: { key } })))));
    return answers.flatMap((a) => a.ranges.map((kvs) => kvs[0]));
  }

  /** The allocations a/ keys hold (holds and keys gone meanwhile left out). */
  async records(keys: string[]): Promise<AllocationRecord[]> {
    return recordsOf((await this.values(keys)).filter((kv): kv is KeyValue => kv !== undefined));
  }

  /** Every key under a prefix, a chunk per request (keys only unless asked). */
  async *walk(base: string, options: { from?: string; keysOnly?: boolean; descending?: boolean; end?: string } = {}): AsyncGenerator<KeyValue> {
    let from = options.from ?? base;
    let end = options.end ?? prefixEnd(base);
    for (;;) {
      const page = await this.client.range(from, end, { limit: CHUNK, keysOnly: options.keysOnly, descending: options.descending });
      yield* page;
      if (page.length < CHUNK) return;
      const last = page[page.length - 1]!.key;
      if (options.descending) end = last;
      else from = `${last}\0`;
    }
  }

  /** Who holds an address: its a/ key in every space there is (a few: one per network and range set). */
  async holders(ip: string): Promise<AllocationRecord[]> {
    const base = this.L.spaces();
    const spaces = await this.client.range(base, prefixEnd(base), { keysOnly: true });
    return this.records(spaces.map((kv) => this.L.allocation(this.L.partsOf(kv.key, base)[0]!, ip)));
  }

  /** One node's allocations (of one network), by its n/ keys. */
  async ofNode(node: string, network?: string): Promise<AllocationRecord[]> {
    const refs = await this.client.rangePrefix(this.L.node(node, network), { keysOnly: true });
    return this.records(refs.map((kv) => this.L.referenced(kv.key)));
  }

  async allocations(f: AllocationFilter): Promise<AllocationRecord[]> {
    const limit = f.limit ?? 1000;
    const offset = f.offset ?? 0;
    const after = f.after ? `${part(f.after.space)}/${addressPart(f.after.ip)}` : "";
    const inOrder = (rs: AllocationRecord[]) => {
      const keyed = rs.filter((r) => matchesFilter(r, f)).map((r) => [`${part(r.space)}/${addressPart(r.ip)}`, r] as const);
      return keyed.filter(([k]) => k > after).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r).slice(offset, offset + limit);
    };
    // A field with its own keys narrows the read to that field's allocations.
    if (f.containerID !== undefined) return inOrder(recordsOf(await this.client.rangePrefix(this.L.container(f.containerID))));
    if (f.ip !== undefined) return inOrder(await this.holders(f.ip));
    if (f.podNamespace !== undefined) {
      // A pod's keys, or (no name) its namespace's: pod/NAMESPACE/ holds them all.
      const refs = await this.client.rangePrefix(this.L.pod(f.podNamespace, f.podName), { keysOnly: true });
      return inOrder(await this.records(refs.map((kv) => this.L.referenced(kv.key))));
    }
    if (f.node !== undefined) return inOrder(await this.ofNode(f.node, f.network));
    // Otherwise a/ in address order, from `after`, until the page is full.
    const out: AllocationRecord[] = [];
    let skip = offset;
    const base = this.L.allocations();
    for await (const kv of this.walk(base, { from: after ? `${base}${after}\0` : base })) {
      const r = parseValue(kv);
      if (isHold(r) || !matchesFilter(r, f)) continue;
      if (skip > 0) skip--;
      else if (out.push(r) >= limit) break;
    }
    return out;
  }

  /**
   * Events newest first. Ids (etcd's revision) order the events of one millisecond across
   * daemons, whose keys order by node name instead: keys are read newest first, and once the
   * read reaches an older millisecond, everything newer is known; the read stops when that
   * holds a page of matching events.
   */
  async history(f: HistoryFilter): Promise<HistoryEvent[]> {
    const limit = f.limit ?? 100;
    const { base, byIndex } = this.historySource(f);
    const end = f.before ? `${base}${String(f.before.at + 1).padStart(15, "0")}` : prefixEnd(base);
    const keep = (e: HistoryEvent) =>
      (!f.before || e.at < f.before.at || (e.at === f.before.at && e.id < f.before.id)) &&
      (f.ip === undefined || e.ip === f.ip) &&
      (f.containerID === undefined || e.containerID === f.containerID) &&
      (f.podNamespace === undefined || e.podNamespace === f.podNamespace) &&
      (f.podName === undefined || e.podName === f.podName) &&
      (f.kind === undefined || e.kind === f.kind);
    const found: HistoryEvent[] = [];
    let pending: KeyValue[] = [];
    // An index key names its commit's ev/ key: those are fetched together, a batch at a time,
    // each once (its other events are left out by keep).
    const resolve = async () => {
      const kvs = byIndex ? await this.values([...new Set(pending.map((kv) => this.L.event(kv.key.slice(base.length))))]) : pending;
      for (const kv of kvs) if (kv) found.push(...eventsOf(kv));
      pending = [];
    };
    let newest = Number.POSITIVE_INFINITY;
    for await (const kv of this.walk(base, { end, descending: true, keysOnly: byIndex })) {
      const at = eventTime(kv.key.slice(base.length));
      if (at < newest) {
        if (pending.length >= (byIndex ? Math.min(limit, CHUNK) : 1)) await resolve();
        if (found.filter(keep).length >= limit) break;
        newest = at;
      }
      pending.push(kv);
    }
    await resolve();
    return found.filter(keep).sort((a, b) => b.at - a.at || b.id - a.id).slice(0, limit);
  }

  /** Where a history query reads: the most selective index its filter allows, else ev/. */
  private historySource(f: HistoryFilter): { base: string; byIndex: boolean } {
    if (f.ip !== undefined) return { base: this.L.eventIndex("ip", addressPart(f.ip)), byIndex: true };
    if (f.containerID !== undefined) return { base: this.L.eventIndex("c", f.containerID), byIndex: true };
    if (f.podNamespace !== undefined && f.podName !== undefined) return { base: this.L.eventIndex("p", f.podNamespace, f.podName), byIndex: true };
    if (f.kind !== undefined && f.kind !== "allocated" && f.kind !== "released") return { base: this.L.eventIndex("k", f.kind), byIndex: true };
    return { base: this.L.events(), byIndex: false };
  }

  /** Drops events older than `before` with their index keys; resolves with how many went. */
  async pruneHistory(before: number): Promise<number> {
    const base = this.L.events();
    const end = `${base}${String(before).padStart(15, "0")}`;
    let pruned = 0;
    for (;;) {
      const old = await this.client.range(base, end, { limit: CHUNK });
      if (old.length === 0) return pruned;
      const stored = old.map((kv) => ({ kv, events: eventsOf(kv) }));
      const keys = [...new Set(stored.flatMap(({ kv, events }) => [kv.key, ...events.flatMap((e) => this.L.eventIndexes(e, kv.key.slice(base.length)))]))];
      for (let i = 0; i < keys.length; i += MAX_OPS) await this.client.txn([], keys.slice(i, i + MAX_OPS).map((key) => ({ delete: { key } })));
      for (const s of stored) pruned += s.events.length;
    }
  }
}
