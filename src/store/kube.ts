/**
 * The Kubernetes-API store (`serve --store kubernetes`): the Store contract on custom resources
 * in one namespace, shared by the daemons of every node with no etcd of ipamd's own. A pool's
 * space is cut into blocks (IPAMBlock objects holding their allocations, holds and bindings,
 * after Calico's design), each written under compare-and-swap on its resourceVersion; a node
 * claims blocks and allocates inside its own, so daemons rarely write one object, and a batch
 * of ADDs landing in one block is one write. Every read comes from a watch-fed cache
 * (kube/cache.ts); commits are kube/commit.ts; history and cursors stay on the node
 * (kube/local-db.ts). This file is the Store those make together.
 */
import type { Family } from "../ipam/address.ts";
import { Informer } from "../kube/informer.ts";
import type { InvalidObject } from "../kube/list.ts";
import { IPAMBlocks } from "../kube/resources.ts";
import type { IPAMBlock } from "../kube/schemas/store.ts";
import { type ObjectClient, StoreApi } from "./kube/api.ts";
import { BlockCache } from "./kube/cache.ts";
import { KubeCommitter } from "./kube/commit.ts";
import { LocalDb } from "./kube/local-db.ts";
import type { BlockPrefixes } from "./kube/names.ts";
import { NodeLeases } from "./kube/nodes.ts";
import { ObjectWriter } from "./kube/objects.ts";
import * as reads from "./kube/reads.ts";
import { NodeSubnets } from "./kube/subnets.ts";
import { Tidier } from "./kube/tidy.ts";
import { OwnTxns } from "./kube/txns.ts";
import type { AllocationFilter, AllocationRecord, AttachmentKey, Binding, Block, Change, HistoryEvent, HistoryFilter, Hold, Store, SubnetChooser } from "./store.ts";

export interface KubeStoreOptions {
  /** Where its objects live: the Kubernetes API, or etcd (EtcdObjects). */
  client: ObjectClient;
  /** Where the store's objects live (its namespace). */
  namespace: string;
  /** This daemon's node: named in its commits' pending changes and markers. */
  node: string;
  /** The local database (history, cursors). */
  db: string;
  /** The blocks' prefix lengths: every daemon of a store must use the same. */
  blockPrefixes: BlockPrefixes;
  /** Told of what the cache's watch could not do (it retries by itself). */
  onWatchError?: (error: unknown) => void;
  /**
   * Told of a block the store cannot read (hand-edited into a shape ipamd does not write): it is
   * left out of the cache, and a write that meets it fails as a storage fault.
   */
  onInvalidBlock?: (invalid: InvalidObject) => void;
}

export class KubeStore implements Store {
  readonly shared = true;
  /** A commit spanning many blocks is still one commit (its pending changes go first). */
  readonly commitCapacity = 512;
  readonly api: StoreApi;
  readonly txns = new OwnTxns();
  readonly cache: BlockCache;
  private readonly writer: ObjectWriter;
  private readonly committer: KubeCommitter;
  private readonly subnets: NodeSubnets;
  private readonly tidier: Tidier;
  private leases: NodeLeases;
  private informer: Informer<typeof IPAMBlocks> | undefined;

  private constructor(
    private readonly options: KubeStoreOptions,
    private readonly local: LocalDb,
  ) {
    this.api = new StoreApi(options.client, options.namespace);
    this.cache = new BlockCache(this.txns.resolution, { node: options.node, onInvalid: options.onInvalidBlock });
    this.writer = new ObjectWriter(this.api, this.cache, this.txns, options.node, options.blockPrefixes);
    this.committer = new KubeCommitter(this.writer, this.cache, this.txns, local, options.blockPrefixes, options.node);
    this.subnets = new NodeSubnets(this.api);
    this.leases = new NodeLeases(this.api, options.node);
    this.tidier = new Tidier(this.api, this.cache, this.txns, this.writer, this.committer);
    this.committer.onLeftovers = () => this.tidier.schedule();
  }

  /** Opens the store: the API server must serve ipamd's kinds; resolves once the cache has every block. */
  static async open(options: KubeStoreOptions): Promise<KubeStore> {
    const local = await LocalDb.open(options.db);
    const store = new KubeStore(options, local);
    try {
      await store.api.call("list", IPAMBlocks, () => options.client.list(IPAMBlocks, { namespace: options.namespace, limit: 1 }));
      await Promise.all([store.watch(), store.api.warmUp()]);
      await store.tidier.recover(options.node);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  get namespace(): string {
    return this.options.namespace;
  }

  private async watch(): Promise<void> {
    const put = (object: IPAMBlock) => this.cache.put(object);
    this.informer = new Informer(this.options.client, IPAMBlocks, {
      namespace: this.options.namespace,
      onEvent: (event) => {
        if (event.type !== "deleted") put(event.object);
        else this.cache.remove(event.object.metadata.name!, event.resourceVersion ?? event.object.metadata.resourceVersion ?? "0");
      },
      onError: this.options.onWatchError,
      onInvalid: this.options.onInvalidBlock,
      // This daemon's own writes come back on the watch: when the write's answer came first, the
      // cache holds that version already; when the event comes first, it shows the write landed.
      known: ({ name }, resourceVersion, object) => this.cache.at(name, resourceVersion) ?? this.writer.landed(object),
      // Other nodes' pod starts in their own blocks wait in the cache, read when needed.
      take: ({ name }, resourceVersion, object) => this.cache.take(name, resourceVersion, object),
    }).start();
    await this.informer.synced;
  }

  get onCommit(): ((seconds: number, callers: number) => void) | undefined {
    return this.committer.onCommit;
  }

  set onCommit(listener: ((seconds: number, callers: number) => void) | undefined) {
    this.committer.onCommit = listener;
  }

  commit(changes: Change[]): Promise<void> {
    return this.committer.commit(changes);
  }

  /** Blocks a failed write left in doubt are read again before anything relies on them. */
  private async fresh(): Promise<void> {
    for (const name of [...this.cache.unsure]) await this.writer.readBlock(name);
  }

  async forEachTaken(visit: (space: string, family: Family, ip: string, held: boolean) => void, space?: string): Promise<void> {
    await this.fresh();
    reads.forEachTaken(this.cache, visit, space);
  }

  async cursors(): Promise<Map<string, string>> {
    return this.local.cursors();
  }

  async holds(space?: string): Promise<Hold[]> {
    return reads.holds(this.cache, space);
  }

  async bindings(): Promise<Binding[]> {
    return reads.bindings(this.cache);
  }

  async binding(space: string, pod: string): Promise<Binding | undefined> {
    await this.fresh();
    return reads.binding(this.cache, space, pod);
  }

  async blocks(space?: string): Promise<Block[]> {
    await this.fresh();
    return reads.blocks(this.cache, space);
  }

  async announce(node: string, ttlSeconds: number): Promise<void> {
    if (node !== this.options.node) {
      this.leases.stop();
      this.leases = new NodeLeases(this.api, node);
    }
    await this.leases.announce(ttlSeconds);
  }

  liveNodes(): Promise<string[]> {
    return this.leases.live();
  }

  async anyTaken(space: string, first: string, last: string): Promise<boolean> {
    await this.fresh();
    return reads.anyTaken(this.cache, space, first, last);
  }

  async attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    await this.fresh();
    return this.cache.ofAttachment(network, key.containerID, key.ifname);
  }

  async attachments(network: string, node?: string): Promise<AttachmentKey[]> {
    const records = node === undefined ? reads.allRecords(this.cache) : this.cache.ofNode(node);
    const seen = new Map<string, AttachmentKey>();
    for (const r of records) if (r.network === network) seen.set(`${r.containerID}\0${r.ifname}`, { containerID: r.containerID, ifname: r.ifname });
    return [...seen.values()];
  }

  async holders(ip: string): Promise<AllocationRecord[]> {
    return reads.holders(this.cache, ip);
  }

  async allocations(filter: AllocationFilter): Promise<AllocationRecord[]> {
    return reads.allocations(this.cache, filter);
  }

  async netnsAllocations(node: string): Promise<AllocationRecord[]> {
    return this.cache.ofNode(node).filter((r) => !!r.netns);
  }

  async namespaceUse(pool: string, node?: string): Promise<Map<string, number>> {
    return reads.namespaceUse(this.cache, pool, node);
  }

  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    return this.local.history(filter);
  }

  async pruneHistory(before: number): Promise<number> {
    return this.local.pruneHistory(before);
  }

  claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    return this.subnets.claim(pool, node, choose);
  }

  nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    return this.subnets.nodeSubnets(pool);
  }

  /** Renewing the node's Lease: a small write the API server must persist. */
  probe(): Promise<void> {
    return this.leases.renew();
  }

  async close(): Promise<void> {
    this.leases.stop();
    while (!this.committer.idle) await Bun.sleep(5);
    await this.tidier.close();
    await this.informer?.stop();
    this.local.close();
  }
}
