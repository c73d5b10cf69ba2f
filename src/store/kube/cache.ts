/**
 * The blocks of the store as this daemon knows them: fed by a watch of every IPAMBlock in the
 * store's namespace and by the answers to its own writes (whichever has the newer
 * resourceVersion wins), with the indexes every read needs, so that no ADD, DEL or sweep lists
 * the pool. Each block is kept as the commits it holds make it: pending changes of a commit
 * whose primary carries its marker count as done; those whose fate is not known yet keep
 * their addresses taken and show nothing else. A block whose state a failed write left in
 * doubt is marked unsure, and read again before it is trusted.
 */
import type { IPAMBlock, PendingChange } from "../../kube/schemas/store.ts";
import { type AllocationRecord, byAddress } from "../records.ts";
import { allocationOf, sameAllocation } from "./stored.ts";
import { type Resolution, WorkingBlock } from "./working-block.ts";

export interface CachedBlock {
  object: IPAMBlock;
  view: WorkingBlock;
}

/** An allocation's place: the block's name and the address. */
type Ref = string;
const refOf = (name: string, ip: string): Ref => `${name}\0${ip}`;

/** The keys of the indexes an allocation is listed under. */
function keysOf(r: { network: string; containerID: string; ifname: string; node: string; podNamespace?: string | null; podName?: string | null }) {
  return {
    attachment: `${r.network}\0${r.containerID}\0${r.ifname}`,
    node: r.node,
    container: r.containerID,
    pod: r.podNamespace ? `${r.podNamespace}\0${r.podName ?? ""}` : undefined,
  };
}

const versionOf = (o: { metadata: { resourceVersion?: string | null } }): bigint => BigInt(o.metadata.resourceVersion ?? "0");

/**
 * Refs by key. Most keys (an attachment, a container, a pod) list one allocation: that one is
 * kept as it is, and a Set only once a key has two (a Set per allocation was most of the
 * cache's memory after the allocations themselves).
 */
class Index {
  private readonly map = new Map<string, Ref | Set<Ref>>();
  add(key: string | undefined, ref: Ref): void {
    if (key === undefined) return;
    const now = this.map.get(key);
    if (now === undefined || now === ref) this.map.set(key, ref);
    else if (typeof now === "string") this.map.set(key, new Set([now, ref]));
    else now.add(ref);
  }
  delete(key: string | undefined, ref: Ref): void {
    if (key === undefined) return;
    const now = this.map.get(key);
    if (now === ref) this.map.delete(key);
    else if (typeof now === "object" && now.delete(ref) && now.size === 1) this.map.set(key, now.values().next().value!);
  }
  get(key: string): Iterable<Ref> {
    const now = this.map.get(key);
    return now === undefined ? [] : typeof now === "string" ? [now] : now;
  }
}

export class BlockCache {
  readonly blocks = new Map<string, CachedBlock>();
  /** Blocks whose state a failed write left in doubt: read again before use. */
  readonly unsure = new Set<string>();
  readonly bySpace = new Map<string, Set<string>>();
  private readonly byAttachment = new Index();
  private readonly byNode = new Index();
  private readonly byContainer = new Index();
  private readonly byPod = new Index();
  /** Where each sticky binding is: `space\0pod` → block name. */
  private readonly bindingAt = new Map<string, string>();

  /** own: what this daemon knows of its own commits (the rest is read from primaries' markers). */
  constructor(private readonly own: (txn: string) => Resolution) {}

  /** Whether a commit's pending change happened: its primary's marker, or this daemon's own knowledge. */
  readonly resolve = (txn: string, change: PendingChange): Resolution => {
    const mine = this.own(txn);
    if (mine !== "unknown") return mine;
    return this.blocks.get(change.primary)?.object.spec.commits?.[txn] ? "committed" : "unknown";
  };

  /** Takes an object in unless an equal or newer version of it is here already; true when it did. */
  put(object: IPAMBlock): boolean {
    const name = object.metadata.name!;
    const old = this.blocks.get(name);
    if (old && versionOf(old.object) >= versionOf(object)) return false;
    this.install(name, object);
    // New commit markers: the blocks holding those commits as pending now read them as done.
    for (const [txn, marker] of Object.entries(object.spec.commits ?? {})) {
      if (old?.object.spec.commits?.[txn]) continue;
      for (const secondary of marker.secondaries) {
        const cached = this.blocks.get(secondary);
        if (cached?.object.spec.pending?.[txn]) this.install(secondary, cached.object);
      }
    }
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

  remove(name: string): void {
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
      const [name, ip] = ref.split("\0") as [string, string];
      const cached = this.blocks.get(name);
      const stored = cached?.view.allocations.get(ip);
      if (cached && stored) out.push(allocationOf(cached.view.space, ip, stored));
    }
    return out.sort(byAddress);
  }

  ofAttachment(network: string, containerID: string, ifname: string): AllocationRecord[] {
    return this.records(this.byAttachment.get(`${network}\0${containerID}\0${ifname}`));
  }

  ofNode(node: string): AllocationRecord[] {
    return this.records(this.byNode.get(node));
  }

  ofContainer(containerID: string): AllocationRecord[] {
    return this.records(this.byContainer.get(containerID));
  }

  ofPod(namespace: string, name: string): AllocationRecord[] {
    return this.records(this.byPod.get(`${namespace}\0${name}`));
  }

  /** The block holding a pod's binding in a space, if any. */
  bindingBlock(space: string, pod: string): string | undefined {
    return this.bindingAt.get(`${space}\0${pod}`);
  }

  /** Every cached block of a space (all spaces when none is given). */
  *inSpace(space?: string): Generator<CachedBlock> {
    if (space === undefined) {
      yield* this.blocks.values();
      return;
    }
    for (const name of this.bySpace.get(space) ?? []) {
      const cached = this.blocks.get(name);
      if (cached) yield cached;
    }
  }
}
