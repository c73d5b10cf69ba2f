/**
 * The blocks of the store as this daemon knows them: fed by a watch of every IPAMBlock in the
 * store's namespace and by the answers to its own writes (whichever has the newer
 * resourceVersion wins), with the indexes every read needs, so that no ADD, DEL or sweep lists
 * the pool. Each block is kept as the commits it holds make it: pending changes of a commit
 * whose primary carries its marker count as done; those whose fate is not known yet keep
 * their addresses taken and show nothing else. A block whose state a failed write left in
 * doubt is marked unsure, and read again before it is trusted.
 *
 * Another node's block whose new version only adds or removes lines waits as it came, unread
 * (take; waiting.ts says why). It is read when something asks for it: a read of its space or
 * of it by name, or a lookup whose key it lists or whose value its text holds. What waits
 * never touches what the reads that do not look (a pod's binding, a commit's marker) see: its
 * holds, bindings, pending changes and markers are the version's before.
 */
import { safeParse } from "valibot";
import type { InvalidObject } from "../../kube/list.ts";
import { describeIssues } from "../../kube/errors.ts";
import { type IPAMBlock, IPAMBlockSchema, type PendingChange } from "../../kube/schemas/store.ts";
import { type AllocationRecord, byAddress } from "../records.ts";
import { allocationOf, sameAllocation } from "./stored.ts";
import { Index, keysOf, placeOf, type Ref, refOf } from "./allocation-index.ts";
import { linesOnlyChange, WaitingBlocks } from "./waiting.ts";
import { type Resolution, WorkingBlock } from "./working-block.ts";

export interface CachedBlock {
  object: IPAMBlock;
  view: WorkingBlock;
}

const versionOf = (o: { metadata: { resourceVersion?: string | null } }): bigint => BigInt(o.metadata.resourceVersion ?? "0");

export interface BlockCacheOptions {
  /** This daemon's node: its own blocks are always read at once. */
  node: string;
  /** Told of a waiting block that turns out unreadable when read (it is then left out, as the watch leaves such a block out). */
  onInvalid?: (invalid: InvalidObject) => void;
  /** Characters of allocations text that may wait (default 256 Ki: waiting.ts). */
  waitingTextLimit?: number;
}

export class BlockCache {
  private readonly blocks = new Map<string, CachedBlock>();
  /** Newer versions of other nodes' blocks, not read yet (see take). */
  private readonly waiting: WaitingBlocks;
  /** Blocks whose state a failed write left in doubt: read again before use. */
  readonly unsure = new Set<string>();
  private readonly bySpace = new Map<string, Set<string>>();
  private readonly byAttachment = new Index();
  private readonly byNode = new Index();
  private readonly byContainer = new Index();
  private readonly byPod = new Index();
  /** Where each sticky binding is: `space\0pod` → block name. */
  private readonly bindingAt = new Map<string, string>();

  /** own: what this daemon knows of its own commits (the rest is read from primaries' markers). */
  constructor(
    private readonly own: (txn: string) => Resolution,
    private readonly options: BlockCacheOptions,
  ) {
    this.waiting = new WaitingBlocks(options.waitingTextLimit);
  }

  /** Whether a commit's pending change happened: its primary's marker, or this daemon's own knowledge. */
  readonly resolve = (txn: string, change: PendingChange): Resolution => {
    const mine = this.own(txn);
    if (mine !== "unknown") return mine;
    return this.committed(txn, change.primary) ? "committed" : "unknown";
  };

  /** Whether a block holds a commit's marker (what waits of it never changes its markers). */
  committed(txn: string, primary: string): boolean {
    return !!this.blocks.get(primary)?.object.spec.commits?.[txn];
  }

  /** How many blocks wait unread (see take). */
  get waitingBlocks(): number {
    return this.waiting.size;
  }

  /** A block, its newest version read first if it waits. */
  block(name: string): CachedBlock | undefined {
    this.read(name);
    return this.blocks.get(name);
  }

  /** Every block, each read first if it waits. */
  *entries(): Generator<[string, CachedBlock]> {
    for (const name of this.waiting.names()) this.read(name);
    yield* [...this.blocks]; // as read now, even for a caller that waits between steps
  }

  /** The block at exactly this version, if that is the version read (nothing is read for it). */
  at(name: string, resourceVersion: string): IPAMBlock | undefined {
    const cached = this.blocks.get(name)?.object;
    return cached?.metadata.resourceVersion === resourceVersion ? cached : undefined;
  }

  /**
   * Keeps a watch event's new version of a block as it came, to read when needed, if it is
   * another node's block (by the version read; a block no node claimed is anyone's to write)
   * and the change is to its lines only; true when kept (or older than one kept). Anything
   * else is for the caller to read now.
   */
  take(name: string, resourceVersion: string, object: unknown): boolean {
    const cached = this.blocks.get(name)?.object;
    if (!cached || cached.spec.node === this.options.node || cached.spec.node === "" || this.unsure.has(name) || !/^\d+$/.test(resourceVersion)) return false;
    const version = BigInt(resourceVersion);
    if (version <= versionOf(cached)) return false;
    if (version <= (this.waiting.get(name)?.version ?? -1n)) return true;
    const text = linesOnlyChange(cached.spec, (object as { spec?: unknown } | null)?.spec);
    if (text === undefined) return false;
    for (const other of this.waiting.keep(name, { object, version, text })) this.read(other);
    return true;
  }

  /** Reads a waiting block in: into the cache if it passes the schema, else reported and left out. */
  private read(name: string): void {
    const waiting = this.waiting.drop(name);
    if (!waiting) return;
    const parsed = safeParse(IPAMBlockSchema, waiting.object);
    if (parsed.success) {
      this.put(parsed.output);
      return;
    }
    const namespace = this.blocks.get(name)?.object.metadata.namespace ?? undefined;
    this.options.onInvalid?.({ namespace, name, resourceVersion: String(waiting.version), message: `IPAMBlock: ${describeIssues(parsed.issues)}` });
    this.remove(name);
  }

  /**
   * Reads the waiting blocks a lookup's answer may be wrong about: those whose version read
   * lists it (a newer one may not), and those whose text holds its value (a newer one may list
   * it).
   */
  private readFor(refs: Iterable<Ref>, value: string): void {
    if (this.waiting.size === 0) return;
    for (const ref of [...refs]) this.read(placeOf(ref)[0]);
    for (const name of this.waiting.holding(value)) this.read(name);
  }

  /** Takes an object in unless an equal or newer version of it is here already; true when it did. */
  put(object: IPAMBlock): boolean {
    const name = object.metadata.name!;
    const old = this.blocks.get(name);
    if (old && versionOf(old.object) >= versionOf(object)) return false;
    const waiting = this.waiting.get(name);
    if (waiting && waiting.version <= versionOf(object)) this.waiting.drop(name);
    this.install(name, object);
    // New commit markers: the blocks holding those commits as pending now read them as done.
    for (const [txn, marker] of Object.entries(object.spec.commits ?? {})) {
      if (old?.object.spec.commits?.[txn]) continue;
      for (const secondary of marker.secondaries) {
        const cached = this.blocks.get(secondary);
        if (cached?.object.spec.pending?.[txn]) this.install(secondary, cached.object);
      }
    }
    // What still waits is newer than this version but was judged against the one before it:
    // read it now, so that what waits only ever differs from the version read in its lines.
    if (waiting && this.waiting.get(name)) this.read(name);
    return true;
  }

  /** Recomputes a block's view from its object and re-indexes what changed. */
  install(name: string, object: IPAMBlock): void {
    const before = this.blocks.get(name)?.view;
    const view = new WorkingBlock(object.spec, this.resolve);
    this.blocks.set(name, { object, view });
    let names = this.bySpace.get(view.space);
    if (!names) this.bySpace.set(view.space, (names = new Set()));
    names.add(name);
    this.reindex(name, before, view);
  }

  /**
   * Leaves a block out, and what waits of it: for good (gone as of resourceVersion, unless the
   * version read is newer: this daemon wrote it again since), or unreadable.
   */
  remove(name: string, resourceVersion?: string | null): void {
    if (resourceVersion != null && BigInt(resourceVersion) < versionOf(this.blocks.get(name)?.object ?? { metadata: {} })) return;
    this.waiting.drop(name);
    const cached = this.blocks.get(name);
    if (!cached) return;
    this.blocks.delete(name);
    this.bySpace.get(cached.view.space)?.delete(name);
    this.reindex(name, cached.view, undefined);
  }

  private reindex(name: string, before: WorkingBlock | undefined, after: WorkingBlock | undefined): void {
    for (const [ip, old] of before?.allocations ?? []) {
      const now = after?.allocations.get(ip);
      // The same object when the line did not change (entries read lately are shared).
      if (now && (now === old || sameAllocation(now, old))) continue;
      const keys = keysOf(old);
      const ref = refOf(name, ip);
      this.byAttachment.delete(keys.attachment, ref);
      this.byNode.delete(keys.node, ref);
      this.byContainer.delete(keys.container, ref);
      this.byPod.delete(keys.pod, ref);
    }
    for (const [ip, now] of after?.allocations ?? []) {
      const old = before?.allocations.get(ip);
      if (old && (now === old || sameAllocation(now, old))) continue;
      const keys = keysOf(now);
      const ref = refOf(name, ip);
      this.byAttachment.add(keys.attachment, ref);
      this.byNode.add(keys.node, ref);
      this.byContainer.add(keys.container, ref);
      this.byPod.add(keys.pod, ref);
    }
    const space = (after ?? before)!.space;
    for (const pod of before?.bindings.keys() ?? []) if (this.bindingAt.get(`${space}\0${pod}`) === name && !after?.bindings.has(pod)) this.bindingAt.delete(`${space}\0${pod}`);
    for (const pod of after?.bindings.keys() ?? []) this.bindingAt.set(`${space}\0${pod}`, name);
  }

  /** The records an index lists, in address order. */
  private records(refs: Iterable<Ref>): AllocationRecord[] {
    const out: AllocationRecord[] = [];
    for (const ref of refs) {
      const [name, ip] = placeOf(ref);
      const cached = this.blocks.get(name);
      const stored = cached?.view.allocations.get(ip);
      if (cached && stored) out.push(allocationOf(cached.view.space, ip, stored));
    }
    return out.sort(byAddress);
  }

  /** An index's records for a key, after reading the waiting blocks the answer depends on (value: what their texts would show). */
  private lookup(index: Index, key: string, value: string): AllocationRecord[] {
    this.readFor(index.get(key), value);
    return this.records(index.get(key));
  }

  ofAttachment(network: string, containerID: string, ifname: string): AllocationRecord[] {
    return this.lookup(this.byAttachment, `${network}\0${containerID}\0${ifname}`, containerID);
  }

  ofNode(node: string): AllocationRecord[] {
    return this.lookup(this.byNode, node, node);
  }

  ofContainer(containerID: string): AllocationRecord[] {
    return this.lookup(this.byContainer, containerID, containerID);
  }

  ofPod(namespace: string, name: string): AllocationRecord[] {
    return this.lookup(this.byPod, `${namespace}\0${name}`, name);
  }

  /** The block holding a pod's binding in a space, if any (what waits never changes bindings). */
  bindingBlock(space: string, pod: string): string | undefined {
    return this.bindingAt.get(`${space}\0${pod}`);
  }

  /** Every block of a space (all spaces when none is given), each read first if it waits. */
  *inSpace(space?: string): Generator<CachedBlock> {
    if (space === undefined) {
      for (const [, cached] of this.entries()) yield cached;
      return;
    }
    for (const name of [...(this.bySpace.get(space) ?? [])]) {
      const cached = this.block(name);
      if (cached) yield cached;
    }
  }
}
