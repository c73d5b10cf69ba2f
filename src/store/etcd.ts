/**
 * The cluster-wide store: etcd v3, shared by the daemons of every node. Where each thing lives
 * is layout.ts; how changes become compare-and-swap transactions, commit.ts; the reads that
 * start from secondary keys, reads.ts. This file is the Store those make together, plus the
 * attachment lookup every ADD starts with, batched across concurrent callers.
 */
import type { Family } from "../ipam/address.ts";
import { type EtcdClient, type KeyValue, prefixEnd } from "./etcd-client.ts";
import { COMMIT_CAPACITY, EtcdCommitter, MAX_OPS } from "./etcd/commit.ts";
import { addressOf, Layout, LAYOUT_VERSION, unpart } from "./etcd/layout.ts";
import { migrateFromV1, migrateFromV2orV3, registerSpaces } from "./etcd/migrate.ts";
import { EtcdReads } from "./etcd/reads.ts";
import { bindingOf, holdOf, looksHeld, recordsOf } from "./etcd/values.ts";
import { type AllocationFilter, type AllocationRecord, type AttachmentKey, type Binding, type Block, byAddress, type Change, type HistoryEvent, type HistoryFilter, type Hold, type Store, type SubnetChooser } from "./store.ts";

/** One caller's attachment lookup, waiting for the next batched read. */
interface Lookup {
  prefix: string;
  resolve: (records: AllocationRecord[]) => void;
  reject: (err: unknown) => void;
}

export class EtcdStore implements Store {
  readonly shared = true;
  readonly commitCapacity = COMMIT_CAPACITY;
  private lookups: Lookup[] = [];
  private lookingUp = false;
  private keepAlive: Timer | undefined;
  private readonly layout: Layout;
  private readonly committer: EtcdCommitter;
  private readonly reads: EtcdReads;

  constructor(
    readonly client: EtcdClient,
    readonly prefix = "/ipamd/",
    private readonly node = "",
  ) {
    const L = (this.layout = new Layout(prefix));
    this.committer = new EtcdCommitter(client, L, node);
    this.reads = new EtcdReads(client, L);
  }

  get onCommit(): ((seconds: number, callers: number) => void) | undefined {
    return this.committer.group.onCommit;
  }

  set onCommit(listener: ((seconds: number, callers: number) => void) | undefined) {
    this.committer.group.onCommit = listener;
  }

  /**
   * Brings the prefix to this layout: an empty one is marked, one written by an older layout
   * is migrated (see migrate.ts). Every daemon calls it at start; the marker makes it once.
   */
  async prepare(): Promise<void> {
    const [marker] = await this.client.range(this.layout.version());
    if (marker?.value === LAYOUT_VERSION) return;
    if (marker?.value === "2" || marker?.value === "3") await migrateFromV2orV3(this.client, this.layout, marker.value);
    else if (marker?.value !== "4") await migrateFromV1(this.client, this.layout);
    await registerSpaces(this.client, this.layout);
    await this.client.txn([], [{ put: { key: this.layout.version(), value: LAYOUT_VERSION } }]);
  }

  /**
   * Announces a node as alive: a key under a lease kept alive every ttl/3. When the daemon
   * stops for good the key expires, and other daemons may give up its empty blocks.
   */
  async announce(node: string, ttlSeconds: number): Promise<void> {
    const key = this.layout.liveNode(node);
    const lease = await this.client.leaseGrant(ttlSeconds);
    await this.client.txn([], [{ put: { key, value: String(Date.now()), lease } }]);
    let current = lease;
    // One renewal at a time: a tick that found etcd away can outlast the interval, and two
    // in flight that both learn the lease expired would each grant a new one.
    let renewing = false;
    clearInterval(this.keepAlive);
    this.keepAlive = setInterval(async () => {
      if (renewing) return;
      renewing = true;
      try {
        if (!(await this.client.leaseKeepAlive(current))) {
          current = await this.client.leaseGrant(ttlSeconds);
          await this.client.txn([], [{ put: { key, value: String(Date.now()), lease: current } }]);
        }
      } catch {
        // etcd unreachable: the next tick tries again; the lease outlives short outages
      } finally {
        renewing = false;
      }
    }, (ttlSeconds * 1000) / 3);
  }

  async liveNodes(): Promise<string[]> {
    const base = this.layout.liveNodes();
    return (await this.client.rangePrefix(base, { keysOnly: true })).map((kv) => unpart(kv.key.slice(base.length)));
  }

  async anyTaken(space: string, first: string, last: string): Promise<boolean> {
    const from = this.layout.allocation(space, first);
    return (await this.client.range(from, `${this.layout.allocation(space, last)}\0`, { keysOnly: true, limit: 1 })).length > 0;
  }

  async blocks(space?: string): Promise<Block[]> {
    const base = this.layout.blocks();
    return (await this.client.rangePrefix(this.layout.blocks(space))).map((kv) => {
      const [blockSpace, cidr] = this.layout.partsOf(kv.key, base);
      return { space: blockSpace!, cidr: cidr!, node: kv.value };
    });
  }

  async forEachTaken(visit: (space: string, family: Family, ip: string, held: boolean) => void, space?: string): Promise<void> {
    const base = this.layout.allocations();
    for await (const kv of this.reads.walk(this.layout.allocations(space))) {
      const [keySpace, address] = this.layout.partsOf(kv.key, base);
      const { family, ip } = addressOf(address!);
      visit(keySpace!, family, ip, looksHeld(kv.value));
    }
  }

  /** Every value under a prefix, walked a chunk at a time. */
  private async all(base: string): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    for await (const kv of this.reads.walk(base)) out.push(kv);
    return out;
  }

  async cursors(): Promise<Map<string, string>> {
    const base = this.layout.cursors();
    return new Map((await this.all(base)).map((kv) => [unpart(kv.key.slice(base.length)), kv.value]));
  }

  async holds(space?: string): Promise<Hold[]> {
    return (await this.all(this.layout.holds(space))).map(holdOf).sort((a, b) => (a.until ?? 0) - (b.until ?? 0));
  }

  async bindings(): Promise<Binding[]> {
    return (await this.all(this.layout.bindings())).map(bindingOf).sort((a, b) => (a.releasedAt ?? 0) - (b.releasedAt ?? 0));
  }

  async binding(space: string, pod: string): Promise<Binding | undefined> {
    const [kv] = await this.client.range(this.layout.binding(space, pod));
    return kv ? bindingOf(kv) : undefined;
  }

  attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    return new Promise((resolve, reject) => {
      this.lookups.push({ prefix: this.layout.attachment(key.containerID, network, key.ifname), resolve, reject });
      if (!this.lookingUp) void this.lookUp();
    });
  }

  /**
   * Lookups are batched because every ADD starts with one: a request apiece made them most
   * of what etcd served once the commits were shared. While one round is in flight, later
   * lookups queue; then the whole queue goes out as read-only transactions of a range per
   * caller (as linearizable as a plain range), MAX_OPS ranges each, sent in parallel.
   */
  private async lookUp(): Promise<void> {
    this.lookingUp = true;
    try {
      while (this.lookups.length > 0) {
        const queued = this.lookups.splice(0);
        const batches: Lookup[][] = [];
        for (let i = 0; i < queued.length; i += MAX_OPS) batches.push(queued.slice(i, i + MAX_OPS));
        await Promise.all(batches.map((batch) => this.lookUpBatch(batch)));
      }
    } finally {
      this.lookingUp = false;
    }
  }

  private async lookUpBatch(batch: Lookup[]): Promise<void> {
    let ranges: KeyValue[][];
    try {
      ranges = (await this.client.txn([], batch.map((l) => ({ range: { key: l.prefix, rangeEnd: prefixEnd(l.prefix) } })))).ranges;
    } catch (err) {
      for (const l of batch) l.reject(err);
      return;
    }
    batch.forEach((l, i) => {
      try {
        l.resolve(recordsOf(ranges[i]!).sort(byAddress));
      } catch (err) {
        l.reject(err);
      }
    });
  }

  async attachments(network: string, node?: string): Promise<AttachmentKey[]> {
    const seen = new Map<string, AttachmentKey>();
    // A node's own attachments come from its n/ keys; the whole network's from every att/ key.
    const base = node === undefined ? this.layout.containers() : this.layout.node(node, network);
    for await (const kv of this.reads.walk(base, { keysOnly: true })) {
      const parts = this.layout.partsOf(kv.key, base);
      const [containerID, ifname] = node === undefined ? (parts[1] === network ? [parts[0], parts[2]] : []) : [parts[0], parts[1]];
      if (containerID !== undefined && ifname !== undefined) seen.set(`${containerID}\0${ifname}`, { containerID, ifname });
    }
    return [...seen.values()];
  }

  holders(ip: string): Promise<AllocationRecord[]> {
    return this.reads.holders(ip);
  }

  allocations(filter: AllocationFilter): Promise<AllocationRecord[]> {
    return this.reads.allocations(filter);
  }

  /** Across the cluster, the pool's nsp/ keys (no values); one node's, its own allocations. */
  async namespaceUse(pool: string, node?: string): Promise<Map<string, number>> {
    const use = new Map<string, number>();
    const count = (namespace: string) => use.set(namespace, (use.get(namespace) ?? 0) + 1);
    if (node !== undefined) {
      for (const r of await this.reads.ofNode(node)) if (r.pool === pool && r.podNamespace) count(r.podNamespace);
      return use;
    }
    const base = this.layout.namespaceUse(pool);
    for await (const kv of this.reads.walk(base, { keysOnly: true })) count(this.layout.partsOf(kv.key, base)[0]!);
    return use;
  }

  history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    return this.reads.history(filter);
  }

  pruneHistory(before: number): Promise<number> {
    return this.reads.pruneHistory(before);
  }

  async netnsAllocations(node: string): Promise<AllocationRecord[]> {
    return (await this.reads.ofNode(node)).filter((r) => !!r.netns);
  }

  async claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    const L = this.layout;
    for (let attempt = 0; attempt < 20; attempt++) {
      const base = L.subnets(pool);
      const claims = (await this.client.rangePrefix(base)).map((kv) => ({ subnet: unpart(kv.key.slice(base.length)), node: kv.value }));
      const mine = claims.find((c) => c.node === node) ?? null;
      const chosen = choose(claims.filter((c) => c.node !== node).map((c) => c.subnet), mine?.subnet ?? null);
      if (chosen === (mine?.subnet ?? null)) return chosen;
      const compare = chosen === null ? [] : [{ key: L.subnet(pool, chosen), target: "CREATE" as const, result: "EQUAL" as const, create_revision: 0 }];
      const ops = [...(mine ? [{ delete: { key: L.subnet(pool, mine.subnet) } }] : []), ...(chosen !== null ? [{ put: { key: L.subnet(pool, chosen), value: node } }] : [])];
      if ((await this.client.txn(compare, ops)).succeeded) return chosen;
      // Another node took that subnet between our read and our write: choose again.
    }
    throw new Error(`could not claim a subnet of pool ${pool} for node ${node}: too much contention`);
  }

  async nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    const base = this.layout.subnets(pool);
    return (await this.client.rangePrefix(base)).map((kv) => ({ subnet: unpart(kv.key.slice(base.length)), node: kv.value }));
  }

  async probe(): Promise<void> {
    await this.client.txn([], [{ put: { key: this.layout.health(this.node), value: String(Date.now()) } }]);
  }

  commit(changes: Change[]): Promise<void> {
    return this.committer.commit(changes);
  }

  async close(): Promise<void> {
    clearInterval(this.keepAlive);
    while (!this.committer.group.idle || this.lookingUp) await Bun.sleep(5);
  }
}
