/**
 * What a commit spanning several objects leaves behind, cleared: its pending changes (applied
 * for good where it happened, dropped where it did not) and then its primary's marker. A batch
 * that writes those objects anyway clears them on the way; what is left is written here once
 * no batch is in flight. Also at start: the commits a dead process of this node left half-way
 * are settled from their primaries (see txns.ts). A commit whose primary write may or may not
 * have applied is found out by reading the primary; when its marker is not there, the primary
 * is written once more (a fence) so the lost write can never land later.
 */
import { IPAMBlocks, IPAMNamespaceUsages } from "../../kube/resources.ts";
import { blockSpecWire } from "../../kube/schemas/store.ts";
import { lostRace, type StoreApi } from "./api.ts";
import type { BlockCache } from "./cache.ts";
import type { KubeCommitter } from "./commit.ts";
import type { ObjectWriter } from "./objects.ts";
import type { OwnTxns } from "./txns.ts";

const TIDY_DELAY_MS = 50;
const RETRY_MS = 1000;

export class Tidier {
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly api: StoreApi,
    private readonly cache: BlockCache,
    private readonly txns: OwnTxns,
    private readonly writer: ObjectWriter,
    private readonly committer: KubeCommitter,
  ) {}

  /** Tidies soon, once no batch follows (a batch that does clears most of it itself). */
  schedule(delay = TIDY_DELAY_MS): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.committer.idle) return this.schedule();
      this.committer.exclusive(() => this.tidy()).then(
        () => this.txns.size > 0 && this.schedule(),
        () => this.schedule(RETRY_MS),
      );
    }, delay);
  }

  async tidy(): Promise<void> {
    for (const [txn, primary] of this.txns.doubts()) await this.settleDoubt(txn, primary);
    for (const name of this.txns.leftovers().unsettled) await this.rewrite(name);
    for (const name of this.txns.leftovers().primaries) await this.rewrite(name);
  }

  /** Writes an object only for what loading it settles (pending changes, droppable markers). */
  private async rewrite(name: string): Promise<void> {
    if (this.writer.isUsage(name)) return this.writer.tidyUsage(name);
    const known = this.cache.block(name)?.object ?? (await this.writer.readBlock(name));
    if (!known) return this.txns.written(name, new Set());
    await this.writer.writeBlock(name, known.spec.space, known.spec.cidr, []);
  }

  private async settleDoubt(txn: string, primary: string): Promise<void> {
    for (;;) {
      const block = await this.writer.readBlock(primary);
      if (block?.spec.commits?.[txn]) return this.txns.end(txn, true);
      if (!block) return this.txns.end(txn, false);
      // Not there: a write of the primary now makes the lost one fail if it ever arrives.
      const annotations = { ...(block.metadata.annotations ?? {}), "ipamd.io/fenced-commit": txn };
      try {
        const fenced = await this.api.write(IPAMBlocks, primary, { ...block, metadata: { ...block.metadata, annotations } }, { spec: blockSpecWire(block.spec) }, () => this.cache.unsure.add(primary));
        this.cache.put(fenced);
        return this.txns.end(txn, false);
      } catch (err) {
        if (!lostRace(err)) throw err;
      }
    }
  }

  /** At start: adopts the commits a dead process of this node left, and settles them. */
  async recover(node: string): Promise<void> {
    const adopted = new Set<string>();
    for (const [name, { object }] of this.cache.entries()) {
      for (const [txn, change] of Object.entries(object.spec.pending ?? {})) {
        if (change.node !== node || this.txns.mine(txn)) continue;
        this.txns.adopt(txn, change.primary, this.cache.committed(txn, change.primary), [name]);
        adopted.add(name);
      }
      for (const [txn, marker] of Object.entries(object.spec.commits ?? {})) {
        if (marker.node === node && !this.txns.mine(txn)) this.txns.adopt(txn, name, true, []);
      }
    }
    for (const usage of (await this.api.list(IPAMNamespaceUsages)).items) {
      for (const [txn, change] of Object.entries(usage.spec.pending ?? {})) {
        if (change.node === node && !this.txns.mine(txn)) this.txns.adopt(txn, change.primary, this.cache.committed(txn, change.primary), [usage.metadata.name!]);
      }
    }
    // Views of blocks whose pending changes are now known abandoned no longer keep their addresses.
    for (const name of adopted) this.cache.install(name, this.cache.block(name)!.object);
    if (this.txns.size > 0) await this.committer.exclusive(() => this.tidy());
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.txns.size > 0) await this.committer.exclusive(() => this.tidy()).catch(() => undefined);
  }
}
