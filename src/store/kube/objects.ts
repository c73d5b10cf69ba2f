/**
 * Writing one object of the store under compare-and-swap: the callers' parts are judged
 * against the object as last known, in queue order, and the result is written with the
 * resourceVersion it was judged on. When another writer got there first (a conflict, or the
 * object appeared), it is read fresh and judged again; a caller is only refused on what a
 * fresh read shows. Blocks come from the watch-fed cache, usage objects from the last read.
 */
import { safeParse } from "valibot";
import { ErrorCode, IpamError } from "../../errors.ts";
import { apiVersionOf, IPAMBlocks, IPAMNamespaceUsages } from "../../kube/resources.ts";
import { ObjectMetaSchema } from "../../kube/schemas/meta.ts";
import { type BlockSpec, type BlockSpecWire, blockSpecWire, type IPAMBlock, type IPAMNamespaceUsage } from "../../kube/schemas/store.ts";
import type { LimitError } from "../store.ts";
import { lostRace, type StoreApi } from "./api.ts";
import type { BlockCache } from "./cache.ts";
import { blockCidr, blockName } from "./names.ts";
import type { BlockPart, UsagePart } from "./parts.ts";
import type { OwnTxns } from "./txns.ts";
import { usageAddress, WorkingUsage } from "./usage.ts";
import { type Judgement, type Mode, type Resolution, WorkingBlock } from "./working-block.ts";

/** Writes of one object that may lose the race in a row before the commit answers 11. */
const CAS_ATTEMPTS = 24;

export interface BlockEntry {
  part: BlockPart;
  mode: Mode;
  result?: Judgement;
}

export interface UsageEntry {
  part: UsagePart;
  txn: { id: string; primary: string; node: string; at: number };
  result?: LimitError | null;
}

/** A block write on its way: the version it replaces (-1: a create), its spec as sent and as held. */
interface Sending {
  after: bigint;
  wire: BlockSpecWire;
  spec: BlockSpec;
  /** The block as stored, once the write is known to have landed. */
  block?: IPAMBlock;
  landed: (block: IPAMBlock) => void;
}

export class ObjectWriter {
  /** Usage objects as last read or written (undefined: known not to exist). */
  private readonly usages = new Map<string, IPAMNamespaceUsage | undefined>();
  /** Block writes whose answer has not come yet, by block (one at a time: one batch writes at a time). */
  private readonly sending = new Map<string, Sending>();

  constructor(
    private readonly api: StoreApi,
    private readonly cache: BlockCache,
    private readonly txns: OwnTxns,
    private readonly node: string,
    private readonly prefixes: { v4: number; v6: number },
  ) {}

  /** Reads a block fresh into the cache; undefined when there is none. */
  async readBlock(name: string): Promise<IPAMBlock | undefined> {
    const object = await this.api.get(IPAMBlocks, name);
    if (object) this.cache.put(object);
    else this.cache.remove(name);
    this.cache.unsure.delete(name);
    return object ? this.cache.block(name)?.object : undefined;
  }

  /** A commit marker of this node's that may go: its commit is settled everywhere. */
  private readonly droppable = (txn: string, marker: { node: string }): boolean => marker.node === this.node && this.txns.markerDroppable(txn);

  /** Judges the entries on the block and writes it (nothing when nothing changes). */
  async writeBlock(name: string, space: string, cidr: string, entries: BlockEntry[]): Promise<void> {
    let fresh = this.cache.unsure.has(name);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const base = fresh ? await this.readBlock(name) : this.cache.block(name)?.object;
      let block = base ? new WorkingBlock(base.spec, this.cache.resolve) : WorkingBlock.empty(space, cidr);
      const before = new Set(block.commits.keys());
      block.dropMarkers(this.droppable);
      for (const entry of entries) {
        const trial = block.clone();
        entry.result = trial.judge(entry.part.changes, entry.mode);
        if (entry.result.ok) block = trial;
      }
      // Refused on what the cache showed: look again before telling anyone.
      if (!fresh && base && entries.some((e) => !e.result!.ok)) {
        fresh = true;
        continue;
      }
      if (!block.changed || (!base && block.empty)) {
        this.txns.written(name, new Set(Object.keys(base?.spec.pending ?? {})));
        return;
      }
      try {
        const written = await this.sendBlock(name, base, block.toSpec());
        this.cache.put(written);
        this.txns.written(name, new Set(Object.keys(written.spec.pending ?? {})));
        for (const txn of before) if (!written.spec.commits?.[txn]) this.txns.forget(txn);
        return;
      } catch (err) {
        if (!lostRace(err)) throw err;
        fresh = true;
      }
    }
    throw new IpamError(ErrorCode.TryAgainLater, `block ${cidr} of ${space}: lost ${CAS_ATTEMPTS} races for it in a row; try again`);
  }

  /**
   * Writes a block; resolves with it as stored once the API server shows the write landed: in
   * its answer, or in the watch event of it, whichever comes first. The event often comes
   * first (the answer's encoding and filters come after it), and a pod start need not wait for
   * the answer. Once the write is known to have landed, a failing answer puts nothing in doubt.
   */
  private sendBlock(name: string, base: IPAMBlock | undefined, spec: BlockSpec): Promise<IPAMBlock> {
    return new Promise((resolve, reject) => {
      const sending: Sending = { after: base ? BigInt(base.metadata.resourceVersion ?? "0") : -1n, wire: blockSpecWire(spec), spec, landed: resolve };
      this.sending.set(name, sending);
      const answered = () => {
        if (this.sending.get(name) === sending) this.sending.delete(name);
      };
      const unsure = () => {
        if (!sending.block) this.cache.unsure.add(name);
      };
      this.api.write(IPAMBlocks, name, base, { spec: sending.wire }, unsure, this.landed).then(
        (block) => {
          answered();
          resolve(block);
        },
        (err) => {
          answered();
          if (!sending.block) reject(err);
        },
      );
    });
  }

  /**
   * The block as stored, if `object` (a block as the API server sent it, unchecked: an answer
   * or a watch event) shows this daemon's write of it in flight landed: a newer version than it
   * replaced, with exactly the spec sent. Nobody else's write can be that when the spec holds
   * this node's new entries (their containers and times, its commits' ids); when it only takes
   * entries away, another writer's may be (the same release made twice): the block then holds
   * just what this write wanted, and its own failing compare-and-swap no longer matters. Its
   * spec is then the one this daemon holds, read without the schema (the spec's text reads
   * back equal: allocation-entry.ts), and the write is settled. The answer that comes after the
   * event is that block again (it is not read twice: its reading would compete with the pod
   * start for the node's cores). Anything else (the server changed the spec, say) is read the
   * usual way.
   */
  readonly landed = (object: unknown): IPAMBlock | undefined => {
    const { metadata, spec } = (object ?? {}) as { metadata?: { name?: unknown }; spec?: unknown };
    const sending = typeof metadata?.name === "string" ? this.sending.get(metadata.name) : undefined;
    if (!sending) return undefined;
    const meta = safeParse(ObjectMetaSchema, metadata);
    const version = meta.success ? meta.output.resourceVersion : undefined;
    if (!version || !/^\d+$/.test(version) || BigInt(version) <= sending.after || !Bun.deepEquals(spec, sending.wire)) return undefined;
    if (sending.block) return sending.block.metadata.resourceVersion === version ? sending.block : undefined;
    sending.block = { apiVersion: apiVersionOf(IPAMBlocks), kind: IPAMBlocks.kind, metadata: meta.output, spec: sending.spec } as IPAMBlock;
    sending.landed(sending.block);
    return sending.block;
  };

  private resolveUsage = (txn: string, primary: string): Resolution => {
    const mine = this.txns.resolution(txn);
    if (mine !== "unknown") return mine;
    return this.cache.committed(txn, primary) ? "committed" : "unknown";
  };

  /** Whether an allocation a usage object lists is still there, as the cache has its block. */
  private live(key: string, ref: { containerID: string; createdAt: number }): boolean | undefined {
    const { space, ip } = usageAddress(key);
    const view = this.cache.block(blockName(space, blockCidr(ip, this.prefixes).cidr))?.view;
    if (!view) return undefined;
    const now = view.allocations.get(ip);
    return view.locks.has(ip) || (now !== undefined && now.containerID === ref.containerID && now.createdAt === ref.createdAt);
  }

  /** Entries whose allocation is gone, confirmed by a fresh read of their blocks. */
  private async gone(usage: WorkingUsage): Promise<string[]> {
    const suspects = [...usage.addresses].filter(([key, ref]) => this.live(key, ref) !== true);
    if (suspects.length === 0) return [];
    const blocks = new Set(suspects.map(([key]) => {
      const { space, ip } = usageAddress(key);
      return blockName(space, blockCidr(ip, this.prefixes).cidr);
    }));
    await Promise.all([...blocks].map((name) => this.readBlock(name)));
    return suspects.filter(([key, ref]) => this.live(key, ref) !== true).map(([key]) => key);
  }

  /** What a new usage object starts from: the namespace's allocations of the pool as the cache has them. */
  private seed(usage: WorkingUsage): void {
    for (const { view } of this.cache.inSpace()) {
      for (const [ip, a] of view.allocations) {
        if (a.pool === usage.pool && a.podNamespace === usage.namespace) usage.addresses.set(`${view.space}|${ip}`, { containerID: a.containerID, createdAt: a.createdAt });
      }
    }
    usage.changed = true;
  }

  async writeUsage(name: string, entries: UsageEntry[]): Promise<void> {
    const { pool, namespace } = entries[0]!.part.add;
    let fresh = !this.usages.has(name);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (fresh) this.usages.set(name, await this.api.get(IPAMNamespaceUsages, name));
      const base = this.usages.get(name);
      const usage = new WorkingUsage(pool, namespace, base?.spec, this.resolveUsage);
      if (!base) this.seed(usage);
      usage.prune(await this.gone(usage));
      for (const entry of entries) entry.result = usage.add(entry.part.add, entry.txn);
      if (!fresh && entries.some((e) => e.result)) {
        fresh = true;
        continue;
      }
      if (!usage.changed) return;
      try {
        const written = await this.api.write(IPAMNamespaceUsages, name, base, { spec: usage.toSpec() }, () => this.usages.delete(name));
        this.usages.set(name, written);
        this.txns.written(name, new Set(Object.keys(written.spec.pending ?? {})));
        return;
      } catch (err) {
        if (!lostRace(err)) throw err;
        fresh = true;
      }
    }
    throw new IpamError(ErrorCode.TryAgainLater, `the use of pool ${pool} by namespace ${namespace}: lost ${CAS_ATTEMPTS} races for it in a row; try again`);
  }

  /** Writes a usage object only to settle this node's commits in it (their pending changes go). */
  async tidyUsage(name: string): Promise<void> {
    const base = await this.api.get(IPAMNamespaceUsages, name);
    this.usages.set(name, base);
    if (!base) return this.txns.written(name, new Set());
    const usage = new WorkingUsage(base.spec.pool, base.spec.namespace, base.spec, this.resolveUsage);
    if (!usage.changed) return this.txns.written(name, new Set(Object.keys(base.spec.pending ?? {})));
    try {
      const written = await this.api.write(IPAMNamespaceUsages, name, base, { spec: usage.toSpec() }, () => this.usages.delete(name));
      this.usages.set(name, written);
      this.txns.written(name, new Set(Object.keys(written.spec.pending ?? {})));
    } catch (err) {
      if (!lostRace(err)) throw err;
      this.usages.delete(name); // the next tidy reads it again
    }
  }

  /** Whether a name is a usage object this writer knows. */
  isUsage(name: string): boolean {
    return name.startsWith("u-");
  }
}
