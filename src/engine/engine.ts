/**
 * The engine: every allocation decision of the daemon, made by the pure planners (plan-*.ts)
 * from memory (state.ts) and carried out by the one apply path (apply.ts). This file is the
 * shell around them: it reads what a plan needs from the store first (fresh bindings; this
 * node's blocks: node-blocks.ts), serialises operations per attachment, and retries what a
 * shared store's races call for (sharing.ts). Releases are in releases.ts, imports in import.ts.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, type Ip, parseIp } from "../ipam/address.ts";
import type { NamedPool } from "../ipam/named-pool.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import { StorageFault } from "../store/storage-fault.ts";
import { type AllocationRecord, AttachmentHeld, type Binding, ConflictError, type Hold, LimitError, type ReleaseKind, type Store } from "../store/store.ts";
import { type AllocationObserver, Applier } from "./apply.ts";
import { blockStart, type BlockSizes, DEFAULT_BLOCK_SIZES } from "./blocks.ts";
import { importAllocations } from "./import.ts";
import { NodeBlocks } from "./node-blocks.ts";
import { readSnapshot } from "./load.ts";
import { AttachmentLocks } from "./locks.ts";
import { type AddOutcome, bindingKey, planAdd } from "./plan-add.ts";
import { planExpiry } from "./plan-release.ts";
import { type AddTargets, PoolRegistry } from "./pools.ts";
import { reservations, reserve, type ReserveRequest, unreserve, type UnreserveRequest } from "./reservations.ts";
import { collectGarbage, releaseAbandonedBlocks, releaseAddress, releaseCurrent, releaseRecords } from "./releases.ts";
import { type Sharing, sharingOf } from "./sharing.ts";
import { refreshNamedSpaces, refuseSpaceMoves, spaceMoves } from "./space-moves.ts";
import { AddressState } from "./state.ts";
import type { AddRequest, Answer, Attachment, GcRequest, ImportRequest, ImportResult } from "./requests.ts";
import { answerFor, stickyKey, type Target, toAnswer } from "./target.ts";

/** Run-out holds one ADD ends before allocating; more wait for the next ADD, so none waits long. */
const MAX_EXPIRED_PER_ADD = 32;

export interface EngineOptions {
  node: string;
  pools?: Map<string, NamedPool>;
  /** `defaultPools`, as groups (see PoolSetup). */
  defaultPools?: string[][];
  /** Block sizes (prefix lengths) for a shared store. */
  blockSizes?: BlockSizes;
  /** Seconds without renewal after which a node counts as gone (shared stores). */
  nodeTtlSeconds?: number;
  observer?: AllocationObserver;
  /** The clock, injectable so cooldown and sticky expiry can be tested without waiting. */
  now?: () => number;
}

export class Engine {
  readonly state = new AddressState();
  readonly registry: PoolRegistry;
  readonly sharing: Sharing;
  readonly node: string;
  readonly applier: Applier;
  readonly locks = new AttachmentLocks();
  readonly now: () => number;
  private readonly blocks: NodeBlocks;

  private constructor(
    readonly store: Store,
    options: EngineOptions,
  ) {
    this.node = options.node;
    this.now = options.now ?? Date.now;
    this.sharing = sharingOf(store);
    this.registry = new PoolRegistry(options.node);
    this.applier = new Applier(this.state, store, this.sharing, options.observer);
    this.blocks = new NodeBlocks(this.state, store, this.applier, options.blockSizes ?? DEFAULT_BLOCK_SIZES, this.node);
  }

  /** Reads what the store holds, claims this node's subnets, and (shared stores) announces the node. */
  static async start(store: Store, options: EngineOptions): Promise<Engine> {
    const engine = new Engine(store, options);
    engine.state.load(await readSnapshot(store));
    engine.state.loadCursors(await store.cursors());
    if (engine.sharing.blocks) engine.state.loadBlocks(await store.blocks(), engine.node, blockStart);
    const setup = { pools: options.pools ?? new Map(), defaults: options.defaultPools ?? [] };
    refuseSpaceMoves(engine.state, setup);
    await engine.registry.configure(setup, store);
    if (engine.sharing.announces) await store.announce(engine.node, options.nodeTtlSeconds ?? 60);
    return engine;
  }

  /** Swaps in a new pool configuration; allocations and requests in flight are untouched. */
  async reconfigure(setup: PoolSetup): Promise<void> {
    await refreshNamedSpaces(this);
    refuseSpaceMoves(this.state, setup);
    await this.registry.configure(setup, this.store);
  }

  /** The pools of a setup that would move to another space while their addresses are held (see space-moves.ts). */
  async movedPools(setup: PoolSetup): Promise<{ pool: string; message: string }[]> {
    await refreshNamedSpaces(this);
    return spaceMoves(this.state, setup);
  }

  get allocationCount(): number {
    return this.state.allocations;
  }

  takenSet(space: string, family: Family) {
    return this.state.takenSet(space, family);
  }

  async add(req: AddRequest): Promise<Answer[]> {
    let selection: AddTargets | IpamError;
    try {
      selection = this.registry.targetsFor(req);
    } catch (err) {
      if (!(err instanceof IpamError)) throw err;
      selection = err;
    }
    const requested = (req.requestedIps ?? []).map((text) => {
      const ip = parseIp(text);
      if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `requested IP "${text}" is not an IP address`);
      return ip;
    });
    return this.locks.run(req.network, req, async () => {
      // An attachment that holds addresses is answered with them, even where the rules have
      // changed since (a reload): they stay until released, like any other out of scope. No
      // read comes first (a round trip per ADD on a shared store): the commit refuses an ADD
      // whose attachment holds addresses (AttachmentHeld), and a refusal of the request (a
      // taken static address, an exhausted pool) is checked so. A store that is away is not:
      // the read would wait out the plugin's deadline too, and the runtime's retry checks.
      const held = async (err: unknown): Promise<Answer[]> => {
        const refusal = err instanceof AttachmentHeld || (err instanceof IpamError && !(err instanceof StorageFault) && err.code !== ErrorCode.TryAgainLater);
        const existing = refusal ? await this.store.attachment(req.network, req).catch(() => null) : null;
        if (existing?.length) return existing.map((r) => answerFor(r, selection instanceof IpamError ? [] : selection.targets));
        throw err instanceof AttachmentHeld ? new IpamError(ErrorCode.TryAgainLater, `${err.message}, but none were found: try again`) : err;
      };
      if (selection instanceof IpamError) return held(selection);
      return this.allocate(req, selection, requested).then((records) => records.map(toAnswer), held);
    });
  }

  del(req: Attachment): Promise<void> {
    return this.locks.run(req.network, req, async () => {
      await releaseCurrent(this, () => this.store.attachment(req.network, req), "cni del", "released");
    });
  }

  /** Releases given allocations, attachment by attachment (see releases.ts). */
  releaseRecords(records: AllocationRecord[], cause: string, kind: ReleaseKind = "released"): Promise<AllocationRecord[]> {
    return releaseRecords(this, records, cause, kind);
  }

  /** An operator's release of one address, in one network or space if given (see releases.ts). */
  releaseAddress(ip: string, cause: string, where: { network?: string; space?: string } = {}): Promise<{ released: AllocationRecord[]; unbound: number }> {
    return releaseAddress(this, ip, cause, where);
  }

  /** Keeps a pool's addresses from pods until unreserved (see reservations.ts). */
  reserve(req: ReserveRequest): Promise<{ reserved: string[] }> {
    return reserve(this, req);
  }

  unreserve(req: UnreserveRequest): Promise<{ unreserved: string[] }> {
    return unreserve(this, req);
  }

  reservations(filter: { pool?: string; space?: string } = {}): Promise<Hold[]> {
    return reservations(this, filter);
  }

  /** Releases every attachment of the network that the runtime does not list as valid. */
  gc(req: GcRequest, cause = "cni gc"): Promise<string[]> {
    return collectGarbage(this, req, cause);
  }

  /** Gives up empty blocks of nodes that are gone (shared stores). */
  releaseAbandonedBlocks(): Promise<string[]> {
    return releaseAbandonedBlocks(this);
  }

  /** Takes over allocations made elsewhere (a host-local data dir); see import.ts. */
  importAllocations(req: ImportRequest): Promise<ImportResult> {
    return importAllocations(this, req);
  }

  async check(req: Attachment): Promise<Answer[]> {
    const existing = await this.store.attachment(req.network, req);
    if (existing.length === 0) {
      throw new IpamError(ErrorCode.UnknownContainer, `no addresses are allocated to container ${req.containerID} interface ${req.ifname} in network ${req.network}`);
    }
    return existing.map(toAnswer);
  }

  /**
   * Plans and applies an ADD's allocations. With a shared store memory can be behind: a
   * commit that lost a race teaches the addresses lost, and "exhausted" is only believed
   * after re-reading the store. A namespace found at a pool's limit by the store's count
   * takes that pool out of this ADD's candidates (the next of its group is tried).
   */
  private async allocate(req: AddRequest, { targets, slots }: AddTargets, requested: Ip[]): Promise<AllocationRecord[]> {
    const borrow = new Set<number>();
    const excluded = new Map<number, IpamError>();
    let reread = false;
    for (let attempt = 0; ; attempt++) {
      await this.prepare(targets);
      const bindings = await this.bindingsFor(targets, req);
      let outcome: AddOutcome;
      try {
        const scopes = targets.map((t) => (this.sharing.blocks ? this.blocks.scopeOf(t) : null));
        outcome = planAdd(this.state, { req, targets, slots, requested, bindings, scopes, borrow, excluded, node: this.node, now: this.now() });
        // Applied in the same turn as planned: no other plan sees the addresses this one takes.
        if ("plan" in outcome) await this.applier.apply(outcome.plan);
      } catch (err) {
        if (err instanceof IpamError && err.code === ErrorCode.PoolExhausted && this.sharing.rereadWhenExhausted && !reread) {
          reread = true;
          await this.reread(targets);
          continue;
        }
        if (err instanceof LimitError) {
          const before = excluded.size;
          for (const [i, t] of targets.entries()) if (t.pool === err.pool) excluded.set(i, new IpamError(ErrorCode.NamespaceLimitReached, err.message));
          // Each refusal takes a pool out; one that takes none out would come back forever.
          if (excluded.size === before) throw new IpamError(ErrorCode.NamespaceLimitReached, err.message);
          continue;
        }
        if (!(err instanceof ConflictError)) throw err;
        for (const t of err.taken) this.state.learn(t.space, t.family, t.ip);
        if (attempt >= this.sharing.conflictRetries) throw new IpamError(ErrorCode.TryAgainLater, `lost ${attempt + 1} races for addresses to other nodes; try again`);
        // Losing again and again means memory is far behind (several nodes borrowing from
        // one nearly full pool): re-read instead of learning one address at a time.
        if (attempt === 1) await this.reread(targets);
        continue;
      }
      if ("plan" in outcome) return outcome.plan.allocated;
      if (!(await this.blocks.claim(targets[outcome.needsBlock]!))) borrow.add(outcome.needsBlock);
    }
  }

  /** Re-reads the targets' spaces from the store (memory may have them wrong). */
  private async reread(targets: Target[]): Promise<void> {
    for (const space of new Set(targets.map((t) => t.space))) await this.resync(space);
  }

  /** Loads one space again from the store, keeping what plans in flight reserved. */
  async resync(space: string): Promise<void> {
    this.state.load(await readSnapshot(this.store, space), space);
    this.applier.unsure.delete(space);
  }

  /**
   * Before planning in a space: re-read it if an unsure failure left memory in doubt, and end
   * its run-out holds, each in a commit of its own (group commit still writes them together).
   * A hold whose end conflicts was taken over elsewhere: memory lets it go, the address stays taken.
   */
  private async prepare(targets: Target[]): Promise<void> {
    for (const t of targets) if (this.applier.unsure.has(t.space)) await this.resync(t.space);
    const now = this.now();
    const policyOf = (pool: string) => this.registry.policyOf({ pool });
    const plans = [...new Set(targets.map((t) => t.space))].flatMap((space) => planExpiry(this.state, space, policyOf, now, MAX_EXPIRED_PER_ADD));
    await Promise.all(
      plans.map((plan) =>
        this.applier.apply(plan).catch((err) => {
          if (err instanceof ConflictError) for (const h of plan.ends) this.state.dropHold(h);
        }),
      ),
    );
  }

  /**
   * The pod's binding in each sticky target's space. A shared store is asked (the pod may
   * have been bound, or its binding ended, on another node) and memory follows its answer.
   */
  private async bindingsFor(targets: Target[], req: AddRequest): Promise<Map<string, Binding | undefined>> {
    const bindings = new Map<string, Binding | undefined>();
    for (const t of targets) {
      const pod = t.policy.sticky ? stickyKey(t.pool, req.pod?.namespace, req.pod?.name) : null;
      if (!pod || bindings.has(bindingKey(t.space, pod))) continue;
      const binding = this.sharing.freshBindings ? await this.store.binding(t.space, pod) : this.state.binding(t.space, pod);
      if (this.sharing.freshBindings) this.state.learnBinding(t.space, pod, binding);
      bindings.set(bindingKey(t.space, pod), binding);
    }
    return bindings;
  }
}
