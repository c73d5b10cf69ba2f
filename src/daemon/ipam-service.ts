/**
 * The daemon's allocation core: it owns the in-memory index of taken addresses (one extent
 * set per space and family), decides every address with the pure allocator, and makes each
 * decision durable through the Store before answering. Operations on one attachment are
 * serialised, so a retried ADD racing its own DEL cannot interleave; different attachments
 * run concurrently and share store commits.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, formatIp, type Ip, lastOf, networkOf, parseCidr, parseIp } from "../ipam/address.ts";
import { allocateNext, checkStatic } from "../ipam/allocator.ts";
import type { ExtentSet } from "../ipam/freespace.ts";
import type { NamedPool } from "../ipam/named-pool.ts";
import type { Range, RangeSet } from "../ipam/pool.ts";
import type { AllocatedIp, AttachmentKey } from "../protocol.ts";
import type { AddRequest, CheckRequest, DelRequest, GcRequest } from "../protocol-requests.ts";
import type { ImportRequest, ImportResponse } from "../protocol-admin.ts";
import { type AllocationRecord, type Binding, type Change, ConflictError, cursorKey, type ReleaseKind, type Store } from "../store/store.ts";
import { AddressIndex } from "./address-index.ts";
import { BlockAffinity, type BlockSizes } from "./blocks.ts";
import { importAllocations } from "./import.ts";
import { PoolRegistry, type Target } from "./pool-registry.ts";
import { type Freed, ReuseState } from "./reuse.ts";

const toAllocatedIp = (r: AllocationRecord): AllocatedIp => ({
  family: r.family,
  address: r.ip,
  prefix: r.prefix,
  ...(r.gateway ? { gateway: r.gateway } : {}),
});

/**
 * An address as the call being answered sees it: prefix and gateway come from the range of
 * this call's netconf (or pool) that holds it, not from whatever was recorded when it was
 * allocated or imported (host-local's files carry no prefix).
 */
function answerFor(r: AllocationRecord, targets: Target[]): AllocatedIp {
  const parsed = parseIp(r.ip);
  for (const t of targets) {
    if (!parsed || t.space !== r.space || t.set.family !== r.family) continue;
    const range = t.set.ranges.find((x) => parsed.value >= x.start && parsed.value <= x.end);
    if (range) return { family: r.family, address: r.ip, prefix: range.subnet.prefix, ...(range.gateway === null ? {} : { gateway: formatIp(range.gateway, r.family) }) };
  }
  return toAllocatedIp(r);
}

/** How often an ADD may lose a race for an address in a shared store before it gives up with 11. */
const MAX_CONFLICT_RETRIES = 16;
/** Run-out holds one ADD ends before allocating; more wait for the next ADD, so none waits long. */
const MAX_EXPIRED_PER_ADD = 32;

/** A sticky binding's key: the pool and the pod's namespace/name (one address per pool). */
const stickyKey = (pool: string, namespace: string | null | undefined, name: string | null | undefined): string | null =>
  namespace && name ? `${pool}:${namespace}/${name}` : null;

/** Told of every durable change, for metrics and utilization warnings. */
export interface AllocationObserver {
  allocated(record: AllocationRecord, target: Target): void;
  released(record: AllocationRecord, kind: ReleaseKind): void;
}

export interface ServiceOptions {
  observer?: AllocationObserver;
  node: string;
  pools?: Map<string, NamedPool>;
  /** Block sizes (prefix lengths) for a shared store. */
  blockSizes?: BlockSizes;
  /** The clock, injectable so cooldown and sticky expiry can be tested without waiting. */
  now?: () => number;
}

export class IpamService {
  readonly index = new AddressIndex();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Block affinity, with a shared store only. */
  private affinity: BlockAffinity | undefined;
  /** The block claim in flight per range set (cursorKey), shared by the ADDs that wait for it. */
  private readonly claiming = new Map<string, Promise<boolean>>();
  readonly registry: PoolRegistry;
  readonly reuse = new ReuseState();
  readonly node: string;
  private readonly now: () => number;
  private readonly observer: AllocationObserver | undefined;

  private constructor(
    readonly store: Store,
    options: ServiceOptions,
  ) {
    this.node = options.node;
    this.now = options.now ?? Date.now;
    this.observer = options.observer;
    this.registry = new PoolRegistry(options.node);
  }

  static async start(store: Store, options: ServiceOptions): Promise<IpamService> {
    const service = new IpamService(store, options);
    service.reuse.load(await store.cooling(), await store.bindings());
    await service.index.rebuild(store, service.reuse);
    await service.index.loadCursors(store);
    await service.registry.configure(options.pools ?? new Map(), store);
    if (store.blocks) {
      service.affinity = new BlockAffinity(store.blocks, options.node, options.blockSizes);
      await service.affinity.load();
    }
    return service;
  }

  /** Swaps in a new pool configuration; allocations and requests in flight are untouched. */
  async reconfigure(pools: Map<string, NamedPool>): Promise<void> {
    await this.registry.configure(pools, this.store);
  }

  get allocationCount(): number {
    return this.index.count;
  }

  takenSet(space: string, family: Family): ExtentSet {
    return this.index.set(space, family);
  }

  /** Runs fn after every earlier operation on the same attachment has finished. */
  private async serialised<T>(network: string, key: AttachmentKey, fn: () => Promise<T>): Promise<T> {
    const lockKey = `${network}\0${key.containerID}\0${key.ifname}`;
    const previous = this.locks.get(lockKey);
    const run = (previous ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(lockKey, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(lockKey) === tail) this.locks.delete(lockKey);
    }
  }

  async add(req: AddRequest): Promise<AllocatedIp[]> {
    const targets = this.registry.targetsFor(req);
    const requested = (req.requestedIps ?? []).map((text) => {
      const ip = parseIp(text);
      if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `requested IP "${text}" is not an IP address`);
      return ip;
    });
    return this.serialised(req.network, req, async () => {
      const existing = await this.store.attachment(req.network, req);
      if (existing.length > 0) return existing.map((r) => answerFor(r, targets));
      return this.allocateWithRetry(req, targets, requested);
    });
  }

  /**
   * With a shared store this daemon's index can be stale: a commit that lost a race teaches it
   * the addresses it lost, and "exhausted" is only believed after re-reading the store.
   */
  private async allocateWithRetry(req: AddRequest, targets: Target[], requested: Ip[]): Promise<AllocatedIp[]> {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.allocate(req, targets, requested);
      } catch (err) {
        if (err instanceof ConflictError && attempt < MAX_CONFLICT_RETRIES) {
          for (const t of err.taken) this.index.learn(t.space, t.family, t.ip);
          // Losing again and again means the index is far behind (several nodes borrowing
          // from one nearly full pool): re-read the store instead of learning one by one.
          if (attempt === 2) await this.index.rebuild(this.store, this.reuse);
          continue;
        }
        if (err instanceof ConflictError) throw new IpamError(ErrorCode.TryAgainLater, `lost ${attempt} races for addresses to other nodes; try again`);
        if (err instanceof IpamError && err.code === ErrorCode.PoolExhausted && this.store.blocks && !refreshed) {
          refreshed = true;
          await this.index.rebuild(this.store, this.reuse);
          continue;
        }
        throw err;
      }
    }
  }

  /** Gives up empty blocks of nodes that are gone (shared store only); see BlockAffinity. */
  async releaseAbandonedBlocks(): Promise<string[]> {
    const affinity = this.affinity;
    if (!affinity) return [];
    await this.index.rebuild(this.store, this.reuse);
    return affinity.releaseAbandoned((space, block) => {
      const cidr = parseCidr(block);
      if (!cidr) return false;
      return this.takenSet(space, cidr.family).countIn(networkOf(cidr), lastOf(cidr)) === 0;
    });
  }

  /** This node's blocks of the target while they have a free address (null: full); the whole set without a shared store. */
  private ownScope(target: Target, taken: ExtentSet): RangeSet | null {
    if (!this.affinity) return target.set;
    const view = this.affinity.view(target.space, target.set);
    return view && allocateNext(view, taken, this.index.cursors.get(cursorKey(target.space, target.set.key)) ?? null) ? view : null;
  }

  /** Claims a free block for the target (false: the pool has none left, time to borrow). */
  private claimBlock(target: Target, taken: ExtentSet): Promise<boolean> {
    // ADDs that find their blocks full together share one claim instead of racing each other
    // for the same free block, a read and a CAS apiece: under load nearly one per ADD.
    const key = cursorKey(target.space, target.set.key);
    let claim = this.claiming.get(key);
    if (!claim) {
      claim = this.affinity!.claimFree(target.space, target.set, taken).finally(() => this.claiming.delete(key));
      this.claiming.set(key, claim);
    }
    return claim;
  }

  /**
   * Picks an address of one target: the pod's sticky one, a requested one, or the next free.
   * pod: the sticky binding's key, when the pool is sticky and the pod is known.
   */
  private pick(pod: string | null, target: Target, taken: ExtentSet, wanted: Ip | undefined, scope: RangeSet): { value: bigint; range: Range; sticky: boolean } {
    const { set, space } = target;
    const binding = pod ? this.reuse.binding(space, pod) : undefined;
    if (binding && !wanted) {
      if (binding.releasedAt === null) {
        throw new IpamError(ErrorCode.AddressInUse, `address ${binding.ip} is bound to pod ${pod} and still held by another of its attachments; retry once that one is deleted`);
      }
      const value = parseIp(binding.ip)!.value;
      const range = set.ranges.find((r) => value >= r.start && value <= r.end);
      if (range) return { value, range, sticky: true };
      // The pool was redefined without this address: the binding cannot be honoured.
    }
    if (wanted) {
      const check = checkStatic(set, taken, wanted.family, wanted.value);
      const text = formatIp(wanted.value, wanted.family);
      if (!check.ok) {
        if (check.reason === "gateway") throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is the gateway of pool ${target.pool}`);
        throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is already allocated (or held for reuse) in ${space.startsWith("@") ? `pool ${target.pool}` : `network ${space}`}`);
      }
      return { value: wanted.value, range: check.range, sticky: false };
    }
    const picked = allocateNext(scope, taken, this.index.cursors.get(cursorKey(space, set.key)) ?? null) ?? (scope === set ? null : allocateNext(set, taken, null));
    if (!picked) {
      throw new IpamError(ErrorCode.PoolExhausted, `pool ${target.pool} is exhausted: all ${set.size} addresses are in use`, `no IP addresses available in range set ${set.key}`);
    }
    return { ...picked, sticky: false };
  }

  private async allocate(req: AddRequest, targets: Target[], requested: Ip[]): Promise<AllocatedIp[]> {
    const marked: { space: string; family: Family; value: bigint }[] = [];
    const changes: Change[] = [];
    const cursorUpdates: [string, bigint][] = [];
    const unclaimed = new Set(requested);
    const now = this.now();
    /** Bindings as they were before this request touched them, to put back if it fails. */
    const previousBindings: [string, string, Binding | undefined][] = [];
    /** Parked addresses this request's pod moved away from: free once committed. */
    const leftBehind: Freed[] = [];
    try {
      for (const target of targets) {
        const { set, space } = target;
        await this.endExpiredHolds(target, now);
        const taken = this.takenSet(space, set.family);
        const wanted = requested.find((ip) => unclaimed.has(ip) && ip.family === set.family && set.ranges.some((r) => ip.value >= r.start && ip.value <= r.end));
        if (wanted) unclaimed.delete(wanted);
        const pod = target.policy.sticky ? stickyKey(target.pool, req.pod?.namespace, req.pod?.name) : null;
        if (pod && this.store.binding) {
          // A shared store: the pod may have been bound, or its binding ended, on another node
          // or by a concurrent ADD here; the store knows, and memory follows it either way.
          this.reuse.restore(space, pod, await this.store.binding(space, pod));
        }
        // Where a dynamic address comes from: this node's blocks, a new block, or anywhere
        // (borrowing). Checked again after each await and then picked at once, so concurrent
        // ADDs never both count on the last free address of a block.
        let scope = wanted ? set : this.ownScope(target, taken);
        while (scope === null) scope = (await this.claimBlock(target, taken)) ? this.ownScope(target, taken) : set;
        const { value, range, sticky } = this.pick(pod, target, taken, wanted, scope);
        const ip = formatIp(value, set.family);
        if (sticky) {
          taken.add(value); // held for the pod already; a binding learned from the store may be news here
        } else {
          if (!this.index.pick(space, set.family, value)) throw new ConflictError([{ space, family: set.family, ip }]);
          marked.push({ space, family: set.family, value });
          const pool = cursorKey(space, set.key);
          cursorUpdates.push([pool, value]);
          changes.push({ op: "cursor", pool, ip });
        }
        if (pod) {
          const previous = this.reuse.binding(space, pod);
          previousBindings.push([space, pod, previous]);
          if (previous && previous.releasedAt !== null && previous.ip !== ip) {
            // The pod comes back on another address (a static one, or its old one left the
            // pool): the parked one is let go, not leaked.
            changes.push(this.reuse.unbind(space, pod));
            leftBehind.push({ space, family: previous.family, value: parseIp(previous.ip)!.value });
          }
          changes.push(this.reuse.bind({ space, pod, family: set.family, ip, releasedAt: null }));
        }
        changes.push({
          op: "allocate",
          replacesHold: sticky,
          record: {
            space,
            network: req.network,
            ip,
            family: set.family,
            prefix: range.subnet.prefix,
            gateway: range.gateway === null ? null : formatIp(range.gateway, set.family),
            pool: target.pool,
            containerID: req.containerID,
            ifname: req.ifname,
            netns: req.netns ?? null,
            podNamespace: req.pod?.namespace ?? null,
            podName: req.pod?.name ?? null,
            podUid: req.pod?.uid ?? null,
            node: this.node,
            createdAt: now,
            static: wanted !== undefined,
          },
        });
      }
      if (unclaimed.size > 0) {
        const [ip] = unclaimed;
        throw new IpamError(ErrorCode.AddressNotInPool, `requested IP ${formatIp(ip!.value, ip!.family)} is not in any range of network ${req.network}`);
      }
      await this.store.commit(changes);
    } catch (err) {
      // All or nothing: what this request marked is given back before it fails.
      for (const m of marked) this.index.settle(m.space, m.family, m.value, false);
      for (const [space, pod, previous] of previousBindings) this.reuse.restore(space, pod, previous);
      throw err;
    }
    this.free(leftBehind);
    for (const m of marked) this.index.settle(m.space, m.family, m.value, true);
    for (const [pool, value] of cursorUpdates) this.index.cursors.set(pool, value);
    this.index.count += targets.length;
    const records = changes.flatMap((c) => (c.op === "allocate" ? [c.record] : []));
    records.forEach((r, i) => this.observer?.allocated(r, targets[i]!));
    return records.map(toAllocatedIp);
  }

  /**
   * Ends the target space's run-out cooldowns and sticky bindings before it allocates, each in
   * a commit of its own (group commit still writes them together), and frees an address only
   * once its change is durable: memory never calls free what the store still holds, and a
   * failure cannot strand them half-done. A change refused as a conflict (the address was
   * taken over elsewhere) is dropped and the address stays taken; any other failure puts the
   * hold back for a later ADD.
   */
  private async endExpiredHolds(target: Target, now: number): Promise<void> {
    const expired = this.reuse.expire(target.space, target.policy, now, MAX_EXPIRED_PER_ADD);
    await Promise.all(
      expired.map(async (hold) => {
        try {
          await this.store.commit([hold.change]);
        } catch (err) {
          if (!(err instanceof ConflictError)) hold.putBack();
          return;
        }
        if (hold.freed) this.free([hold.freed]);
      }),
    );
  }

  private free(freed: Freed[]): void {
    for (const f of freed) this.takenSet(f.space, f.family).delete(f.value);
  }

  async del(req: DelRequest): Promise<void> {
    await this.serialised(req.network, req, () => this.releaseCurrent(() => this.store.attachment(req.network, req), "cni del"));
  }

  /**
   * Reads what an attachment holds and releases it. With a shared store another node may have
   * released an address and handed it out again between the read and the commit, which the
   * store refuses as a conflict: then what is still this attachment's is read again and goes.
   */
  private async releaseCurrent(read: () => Promise<AllocationRecord[]>, cause: string, kind: ReleaseKind = "released"): Promise<AllocationRecord[]> {
    let current = await read();
    try {
      await this.release(current, cause, kind);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      current = await read();
      await this.release(current, cause, kind);
    }
    return current;
  }

  /**
   * Releases given allocations attachment by attachment, each under its attachment's lock and
   * re-read inside it, so a concurrent ADD or DEL of the same attachment cannot interleave.
   */
  async releaseRecords(records: AllocationRecord[], cause: string, kind: ReleaseKind = "released"): Promise<AllocationRecord[]> {
    const released: AllocationRecord[] = [];
    const byAttachment = new Map<string, AllocationRecord>();
    for (const r of records) byAttachment.set(`${r.network}\0${r.containerID}\0${r.ifname}`, r);
    const wanted = new Set(records.map((r) => `${r.space}\0${r.ip}`));
    for (const r of byAttachment.values()) {
      await this.serialised(r.network, r, async () => {
        const read = async () => (await this.store.attachment(r.network, r)).filter((c) => wanted.has(`${c.space}\0${c.ip}`));
        released.push(...(await this.releaseCurrent(read, cause, kind)));
      });
    }
    return released;
  }

  /**
   * An operator's release of one address: its allocation and any sticky binding or cooldown
   * that keeps it from the pool. An address held in more than one network (two netconfs with
   * the same inline range) is refused with the list unless `network` picks one.
   */
  async releaseAddress(ip: string, cause: string, network?: string): Promise<{ released: AllocationRecord[]; unbound: number }> {
    const holders = (await this.store.holders(ip)).filter((h) => network === undefined || h.network === network);
    if (network === undefined) {
      // A hold (cooldown, parked binding) has no network: its space names its place.
      const places = new Set([...holders.map((h) => h.network), ...this.reuse.spacesHolding(ip).filter((space) => !holders.some((h) => h.space === space))]);
      if (places.size > 1) {
        throw new IpamError(ErrorCode.AddressInUse, `${ip} is held in ${places.size} networks: ${[...places].sort().join(", ")}; release one with --network NAME`);
      }
    }
    const released = await this.releaseRecords(holders, cause);
    const spaces = network === undefined ? undefined : new Set([network, ...holders.map((h) => h.space)]);
    const { changes, freed } = this.reuse.forget(ip, spaces);
    if (changes.length > 0) {
      await this.store.commit(changes);
      this.free(freed);
    }
    return { released, unbound: freed.length };
  }

  /**
   * Releases allocations. An address is freed in the index only after the release is
   * durable, so a crash can never hand one out twice; a sticky binding or a cooldown keeps
   * it taken for longer.
   */
  private async release(records: AllocationRecord[], cause: string, kind: ReleaseKind = "released"): Promise<void> {
    if (records.length === 0) return;
    const now = this.now();
    const changes: Change[] = [];
    const freed: Freed[] = [];
    /** What this release did to the reuse state, undone if its commit fails. */
    const undo: (() => void)[] = [];
    for (const r of records) {
      changes.push({ op: "release", space: r.space, ip: r.ip, cause, kind, record: r });
      const policy = this.registry.policyOf(r);
      const pod = stickyKey(r.pool, r.podNamespace, r.podName);
      // A shared store: the binding may be another node's (an operator releasing here what a
      // pod holds there); the store knows it, and memory follows. Asked only where a binding
      // can be: every pod has a key, and most pools are not sticky.
      if (pod && this.store.binding && (policy.sticky || this.reuse.binding(r.space, pod))) {
        this.reuse.restore(r.space, pod, await this.store.binding(r.space, pod));
      }
      const binding = pod ? this.reuse.binding(r.space, pod) : undefined;
      const bound = binding !== undefined && binding.ip === r.ip;
      if (bound) undo.push(() => this.reuse.restore(r.space, pod!, binding));
      if (bound && policy.sticky) {
        // DEL, CNI GC or the leak sweep alike: the pod may come back (a StatefulSet), so
        // its address is parked for it.
        changes.push(this.reuse.bind({ ...binding, releasedAt: now }));
        continue;
      }
      // The pool stopped being sticky: the binding goes with the allocation.
      if (bound) changes.push(this.reuse.unbind(r.space, pod!));
      if (policy.releaseCooldownMs > 0) {
        const cooling = { space: r.space, family: r.family, ip: r.ip, until: now + policy.releaseCooldownMs };
        changes.push(this.reuse.cool(cooling));
        undo.push(() => this.reuse.dropCooling(cooling));
      } else {
        freed.push({ space: r.space, family: r.family, value: parseIp(r.ip)!.value });
      }
    }
    try {
      await this.store.commit(changes);
    } catch (err) {
      // Undone only when the commit surely did not apply: the embedded store rolls a failed
      // commit back, a conflict is a refused transaction; but a shared store's timeout may
      // have applied, and then memory must keep the cooldown or parking the store now holds
      // (the retried DEL finds nothing left to release).
      if (!this.store.blocks || err instanceof ConflictError) for (const step of undo.reverse()) step();
      throw err;
    }
    this.free(freed);
    this.index.count -= records.length;
    for (const r of records) this.observer?.released(r, kind);
  }

  /** Takes over allocations made elsewhere (a host-local data dir); see import.ts. */
  importAllocations(req: ImportRequest): Promise<ImportResponse> {
    return importAllocations({ index: this.index, store: this.store, node: this.node, now: this.now() }, req);
  }

  async check(req: CheckRequest): Promise<AllocatedIp[]> {
    const existing = await this.store.attachment(req.network, req);
    if (existing.length === 0) {
      throw new IpamError(ErrorCode.UnknownContainer, `no addresses are allocated to container ${req.containerID} interface ${req.ifname} in network ${req.network}`);
    }
    return existing.map(toAllocatedIp);
  }

  /** Releases every attachment of the network that the runtime does not list as valid. */
  async gc(req: GcRequest, cause = "cni gc"): Promise<string[]> {
    const valid = new Set(req.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
    const stale: AllocationRecord[] = [];
    // A runtime lists only its own node's attachments: with a shared store, other nodes'
    // allocations are theirs to collect, never this node's.
    const node = this.store.blocks ? this.node : undefined;
    for (const key of await this.store.attachments(req.network, node)) {
      if (valid.has(`${key.containerID}\0${key.ifname}`)) continue;
      const records = await this.store.attachment(req.network, key);
      stale.push(...(node ? records.filter((r) => r.node === node) : records));
    }
    return (await this.releaseRecords(stale, cause, "reclaimed")).map((r) => r.ip);
  }
}
