/**
 * The cluster-wide store: etcd v3, shared by the daemons of every node. Each allocation is a
 * key created under a compare-and-swap (create_revision == 0), so two daemons can never hold
 * one address: the loser's commit fails whole with a ConflictError naming what it lost, and
 * its daemon learns those addresses and allocates again. A commit is durable (raft quorum)
 * before it resolves. Concurrent commits of one daemon share one transaction where they fit.
 *
 * Key layout under the prefix (default /ipamd/):
 *   a/SPACE/IP                    the allocation (record JSON)
 *   att/NETWORK/CID/IFNAME/SPACE/IP   the same record, found by attachment
 *   cur/POOL  cool/SPACE/IP  bind/SPACE/POD  subnet/POOL/SUBNET (value: node)
 *   block/SPACE/BLOCK (value: node)  node/NAME (leased: the node is alive)
 *   ev/TIME-SEQ                   history events
 *
 * An address resting after release (cooldown) or parked for a sticky pod keeps its a/ key,
 * holding a marker instead of a record, so no other daemon can create it meanwhile (also when
 * the release found the key already gone: the hold then starts from a free key).
 */
import { type Family, parseIp } from "../ipam/address.ts";
import type { AttachmentKey } from "../protocol.ts";
import { type Compare, type EtcdClient, type KeyValue, type Op, prefixEnd } from "./etcd-client.ts";
import {
  type AllocationFilter,
  type AllocationRecord,
  type Binding,
  type BlockStore,
  byAddress,
  type Change,
  ConflictError,
  type Cooling,
  type HistoryEvent,
  type HistoryFilter,
  matchesSearch,
  type Store,
  type SubnetChooser,
} from "./store.ts";

/** The a/ value of an address held for reuse rather than allocated. */
interface HoldMarker {
  held: "cooling" | "sticky";
  space: string;
  family: Family;
  ip: string;
}

const holdMarker = (held: HoldMarker["held"], space: string, family: Family, ip: string): string => JSON.stringify({ held, space, family, ip } satisfies HoldMarker);
const isHold = (value: unknown): value is HoldMarker => typeof value === "object" && value !== null && "held" in value;

/** Address order: by space, then family, then numerically (the embedded store's ip_order). */
function inAddressOrder(a: { space: string; family: Family; ip: string }, b: { space: string; family: Family; ip: string }): number {
  if (a.space !== b.space) return a.space < b.space ? -1 : 1;
  if (a.family !== b.family) return a.family - b.family;
  const x = parseIp(a.ip)?.value ?? 0n;
  const y = parseIp(b.ip)?.value ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The allocation records among a/ or att/ values, hold markers left out. */
const recordsOf = (kvs: KeyValue[]): AllocationRecord[] => kvs.map((kv) => JSON.parse(kv.value) as AllocationRecord | HoldMarker).filter((r): r is AllocationRecord => !isHold(r));

/**
 * etcd refuses a transaction whose compare list, success list or failure list, each judged
 * alone, is longer than --max-txn-ops (128 by default). A commit's success list holds its
 * writes; a compare comes only with a change costOf counts as two writes or more (the one
 * compare of a key found gone stands for those of the changes at it), and the failure list
 * holds one range per compare: so a batch whose counted writes stay within MAX_OPS keeps
 * all three lists within it. Lookups send at most MAX_OPS ranges per transaction.
 */
const MAX_OPS = 120;

/**
 * At most how many writes one caller's changes add to a transaction (see translate). A
 * cursor already moved in the batch costs nothing more: the writes of one key merge.
 */
function costOf(changes: Change[], batchCursors: Set<string>): { writes: number; cursors: Set<string> } {
  const cursors = new Set<string>();
  let writes = 0;
  for (const change of changes) {
    if (change.op === "cursor") {
      if (!batchCursors.has(change.pool) && !cursors.has(change.pool)) writes++;
      cursors.add(change.pool);
    } else writes += change.op === "allocate" || change.op === "release" ? 3 : 2;
  }
  return { writes, cursors };
}

interface Pending {
  changes: Change[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** One caller's attachment lookup, waiting for the next batched read. */
interface Lookup {
  prefix: string;
  resolve: (records: AllocationRecord[]) => void;
  reject: (err: unknown) => void;
}

/**
 * A condition of a commit. orAbsent: the change it guards is done already when the key is
 * gone (a release of an allocation somebody else released, the end of a hold nobody holds):
 * then the commit is sent again without what that change would do at the key.
 */
interface Guard {
  compare: Compare;
  orAbsent?: boolean;
}

/** A change as commitOne translates it; read: a release without its record, guarded on the revision read. */
interface Prepared {
  change: Change;
  read?: Compare;
}

/** Whether a compare holds for a key's current value (kv: undefined when the key is gone), as etcd decides it. */
function holds(c: Compare, kv: KeyValue | undefined): boolean {
  if (c.target === "VALUE") return kv !== undefined && kv.value === c.value;
  const actual = c.target === "CREATE" ? (kv?.createRevision ?? 0) : (kv?.modRevision ?? 0);
  const wanted = c.target === "CREATE" ? c.create_revision : c.mod_revision;
  return c.result === "EQUAL" ? actual === wanted : c.result === "GREATER" ? actual > wanted : actual < wanted;
}

export class EtcdStore implements Store {
  private queue: Pending[] = [];
  private flushing = false;
  private lookups: Lookup[] = [];
  private lookingUp = false;
  private eventSeq = 0;
  onCommit: ((seconds: number, callers: number) => void) | undefined;
  private keepAlive: Timer | undefined;
  readonly blocks: BlockStore;

  constructor(
    readonly client: EtcdClient,
    readonly prefix = "/ipamd/",
    private readonly node = "",
  ) {
    this.blocks = {
      blocks: async (space) => {
        const base = this.k("block", "");
        const kvs = await this.client.rangePrefix(space === undefined ? base : this.k("block", space, ""));
        return kvs.map((kv) => {
          const rest = kv.key.slice(base.length);
          const slash = rest.indexOf("/");
          return { space: rest.slice(0, slash), block: rest.slice(slash + 1), node: kv.value };
        });
      },
      claimBlock: async (space, block, owner) =>
        (await this.client.txn([{ key: this.k("block", space, block), target: "CREATE", result: "EQUAL", create_revision: 0 }], [{ put: { key: this.k("block", space, block), value: owner } }])).succeeded,
      releaseBlock: async (space, block, owner) =>
        (await this.client.txn([{ key: this.k("block", space, block), target: "VALUE", result: "EQUAL", value: owner }], [{ delete: { key: this.k("block", space, block) } }])).succeeded,
      liveNodes: async () => {
        const base = this.k("node", "");
        return (await this.client.rangePrefix(base, { keysOnly: true })).map((kv) => kv.key.slice(base.length));
      },
    };
  }

  /**
   * Announces this node as alive: a key under a lease kept alive every ttl/3. When the daemon
   * stops for good the key expires, and other daemons may give up its empty blocks.
   */
  async announce(ttlSeconds: number): Promise<void> {
    const lease = await this.client.leaseGrant(ttlSeconds);
    await this.client.txn([], [{ put: { key: this.k("node", this.node), value: String(Date.now()), lease } }]);
    let current = lease;
    this.keepAlive = setInterval(async () => {
      try {
        if (!(await this.client.leaseKeepAlive(current))) {
          current = await this.client.leaseGrant(ttlSeconds);
          await this.client.txn([], [{ put: { key: this.k("node", this.node), value: String(Date.now()), lease: current } }]);
        }
      } catch {
        // etcd unreachable: the next tick tries again; the lease outlives short outages
      }
    }, (ttlSeconds * 1000) / 3);
  }

  private k = (...parts: string[]) => this.prefix + parts.join("/");

  private async scan(...parts: string[]): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    const base = this.k(...parts, "");
    let from = base;
    const end = prefixEnd(base);
    // Page through large prefixes so one response never holds a million keys.
    for (;;) {
      const page = await this.client.range(from, end, { limit: 10_000 });
      out.push(...page);
      if (page.length < 10_000) return out;
      from = `${page[page.length - 1]!.key}\0`;
    }
  }

  /** Allocation records under a prefix (hold markers left out). */
  private records = async (...parts: string[]): Promise<AllocationRecord[]> => recordsOf(await this.scan(...parts));

  /** Allocations and holds alike: every address another daemon may not take. */
  async forEachAllocated(visit: (space: string, family: Family, ip: string) => void): Promise<void> {
    for (const kv of await this.scan("a")) {
      const r = JSON.parse(kv.value) as AllocationRecord | HoldMarker;
      visit(r.space, r.family, r.ip);
    }
  }

  async cursors(): Promise<Map<string, string>> {
    const base = this.k("cur", "");
    return new Map((await this.scan("cur")).map((kv) => [kv.key.slice(base.length), kv.value]));
  }

  async cooling(): Promise<Cooling[]> {
    return (await this.scan("cool")).map((kv) => JSON.parse(kv.value) as Cooling).sort((a, b) => a.until - b.until);
  }

  async bindings(): Promise<Binding[]> {
    return (await this.scan("bind")).map((kv) => JSON.parse(kv.value) as Binding).sort((a, b) => (a.releasedAt ?? 0) - (b.releasedAt ?? 0));
  }

  async binding(space: string, pod: string): Promise<Binding | undefined> {
    const [kv] = await this.client.range(this.k("bind", space, pod));
    return kv ? (JSON.parse(kv.value) as Binding) : undefined;
  }

  attachment(network: string, key: AttachmentKey): Promise<AllocationRecord[]> {
    return new Promise((resolve, reject) => {
      this.lookups.push({ prefix: this.k("att", network, key.containerID, key.ifname, ""), resolve, reject });
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

  async attachments(network: string): Promise<AttachmentKey[]> {
    const base = this.k("att", network, "");
    const seen = new Map<string, AttachmentKey>();
    for (const kv of await this.client.rangePrefix(base, { keysOnly: true })) {
      const [containerID, ifname] = kv.key.slice(base.length).split("/");
      if (containerID && ifname) seen.set(`${containerID}/${ifname}`, { containerID, ifname });
    }
    return [...seen.values()];
  }

  async holders(ip: string): Promise<AllocationRecord[]> {
    return (await this.records("a")).filter((r) => r.ip === ip);
  }

  async allocations(filter: AllocationFilter): Promise<AllocationRecord[]> {
    const match = (r: AllocationRecord) =>
      (filter.pool === undefined || r.pool === filter.pool) &&
      (filter.node === undefined || r.node === filter.node) &&
      (filter.network === undefined || r.network === filter.network) &&
      (filter.podNamespace === undefined || r.podNamespace === filter.podNamespace) &&
      (filter.podName === undefined || r.podName === filter.podName) &&
      (filter.containerID === undefined || r.containerID === filter.containerID) &&
      (filter.ip === undefined || r.ip === filter.ip) &&
      (filter.search === undefined || matchesSearch(r, filter.search));
    const offset = filter.offset ?? 0;
    const after = filter.after;
    const ordered = (await this.records("a")).filter(match).sort(inAddressOrder);
    const from = after ? ordered.findIndex((r) => inAddressOrder(r, { ...after, family: after.ip.includes(":") ? 6 : 4 }) > 0) : 0;
    return from < 0 ? [] : ordered.slice(from + offset, from + offset + (filter.limit ?? 1000));
  }

  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    const events = (await this.scan("ev")).map((kv) => JSON.parse(kv.value) as HistoryEvent).reverse();
    return events
      .filter(
        (e) =>
          (filter.ip === undefined || e.ip === filter.ip) &&
          (filter.containerID === undefined || e.containerID === filter.containerID) &&
          (filter.podNamespace === undefined || e.podNamespace === filter.podNamespace) &&
          (filter.podName === undefined || e.podName === filter.podName) &&
          (filter.kind === undefined || e.kind === filter.kind) &&
          (filter.before === undefined || e.at < filter.before.at || (e.at === filter.before.at && e.id < filter.before.id)),
      )
      .slice(0, filter.limit ?? 100);
  }

  async pruneHistory(before: number): Promise<number> {
    const old = await this.client.range(this.k("ev", ""), this.k("ev", String(before).padStart(15, "0")), { keysOnly: true });
    if (old.length > 0) await this.client.txn([], [{ delete: { key: this.k("ev", ""), rangeEnd: this.k("ev", String(before).padStart(15, "0")) } }]);
    return old.length;
  }

  async netnsAllocations(node: string): Promise<AllocationRecord[]> {
    return (await this.records("a")).filter((r) => r.node === node && !!r.netns);
  }

  async claimNodeSubnet(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const base = this.k("subnet", pool, "");
      const claims = (await this.client.rangePrefix(base)).map((kv) => ({ subnet: kv.key.slice(base.length), node: kv.value, rev: kv.modRevision }));
      const mine = claims.find((c) => c.node === node) ?? null;
      const chosen = choose(claims.filter((c) => c.node !== node).map((c) => c.subnet), mine?.subnet ?? null);
      if (chosen === (mine?.subnet ?? null)) return chosen;
      const compare: Compare[] = chosen === null ? [] : [{ key: this.k("subnet", pool, chosen), target: "CREATE", result: "EQUAL", create_revision: 0 }];
      const ops: Op[] = [];
      if (mine) ops.push({ delete: { key: this.k("subnet", pool, mine.subnet) } });
      if (chosen !== null) ops.push({ put: { key: this.k("subnet", pool, chosen), value: node } });
      if ((await this.client.txn(compare, ops)).succeeded) return chosen;
      // Another node took that subnet between our read and our write: choose again.
    }
    throw new Error(`could not claim a subnet of pool ${pool} for node ${node}: too much contention`);
  }

  async probe(): Promise<void> {
    await this.client.txn([], [{ put: { key: this.k("health", this.node), value: String(Date.now()) } }]);
  }

  async nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    const base = this.k("subnet", pool, "");
    return (await this.client.rangePrefix(base)).map((kv) => ({ subnet: kv.key.slice(base.length), node: kv.value }));
  }

  /** The hold marker of an address (its family follows from its spelling). */
  private holdOf(space: string, ip: string, held: HoldMarker["held"]): string {
    return holdMarker(held, space, ip.includes(":") ? 6 : 4, ip);
  }

  /**
   * A release names its record so the attachment index and the event can be written; when
   * the caller did not pass it, it is read here (one more round trip), and the release is
   * guarded on what was read: the key unchanged since, or still absent.
   */
  private async prepare(change: Change, gone: Set<string>): Promise<Prepared> {
    if (change.op !== "release" || change.record) return { change };
    const key = this.k("a", change.space, change.ip);
    const [kv] = await this.client.range(key);
    if (!kv) {
      gone.add(key);
      return { change };
    }
    return { change: { ...change, record: recordsOf([kv])[0] }, read: { key, target: "MOD", result: "EQUAL", mod_revision: kv.modRevision } };
  }

  /**
   * The ops and conditions of one change. gone: the a/ keys found absent where a change
   * expected them (see Guard): what releases and hold ends would do there is done already;
   * a cooldown or parking still puts its hold there, on the gone keys' CREATE==0 guard.
   */
  private translate({ change, read }: Prepared, now: number, gone: Set<string>, guards: Guard[], ops: Op[]): void {
    const event = (kind: HistoryEvent["kind"], r: AllocationRecord, cause: string) => {
      const e: HistoryEvent = {
        id: now * 1000 + (this.eventSeq % 1000),
        at: now,
        kind,
        network: r.network,
        ip: r.ip,
        containerID: r.containerID,
        ifname: r.ifname,
        podNamespace: r.podNamespace,
        podName: r.podName,
        podUid: r.podUid,
        cause,
      };
      const key = this.k("ev", `${String(now).padStart(15, "0")}-${this.node}-${String(this.eventSeq++).padStart(10, "0")}`);
      ops.push({ put: { key, value: JSON.stringify(e) } });
    };
    switch (change.op) {
      case "allocate": {
        const r = change.record;
        const key = this.k("a", r.space, r.ip);
        guards.push({
          compare: change.replacesHold
            ? { key, target: "VALUE", result: "EQUAL", value: holdMarker("sticky", r.space, r.family, r.ip) }
            : { key, target: "CREATE", result: "EQUAL", create_revision: 0 },
        });
        ops.push({ put: { key, value: JSON.stringify(r) } });
        ops.push({ put: { key: this.k("att", r.network, r.containerID, r.ifname, r.space, r.ip), value: JSON.stringify(r) } });
        event(change.kind ?? (r.static ? "static" : "allocated"), r, change.cause ?? "cni add");
        break;
      }
      case "release": {
        const key = this.k("a", change.space, change.ip);
        const r = change.record;
        // The attachment index entry goes in any case: harmless when already gone.
        if (r) ops.push({ delete: { key: this.k("att", r.network, r.containerID, r.ifname, r.space, r.ip) } });
        // Released elsewhere meanwhile: nothing more to do here, no second event (rule 7).
        if (gone.has(key)) break;
        // A stale release (the address was released elsewhere meanwhile and handed out
        // again) must not delete, or cover with a hold, the newer owner's key: only the
        // value allocate wrote for this very record may go, or the key as it was read.
        guards.push({ compare: read ?? { key, target: "VALUE", result: "EQUAL", value: JSON.stringify(r) }, orAbsent: true });
        ops.push({ delete: { key } });
        if (r) event(change.kind ?? "released", r, change.cause);
        break;
      }
      case "cursor":
        ops.push({ put: { key: this.k("cur", change.pool), value: change.ip } });
        break;
      case "cool": {
        const c = change.cooling;
        ops.push({ put: { key: this.k("cool", c.space, c.ip), value: JSON.stringify(c) } });
        // Also at a key found gone (released elsewhere, still free: the CREATE==0 guard of gone
        // keys sees to that): the hold is what this daemon's memory counts on, and what a
        // sticky pod's return swaps.
        ops.push({ put: { key: this.k("a", c.space, c.ip), value: holdMarker("cooling", c.space, c.family, c.ip) } });
        break;
      }
      case "uncool": {
        ops.push({ delete: { key: this.k("cool", change.space, change.ip) } });
        // Only our hold goes: if the key holds anything else now, the commit fails and we
        // learn it; if it holds nothing (the release found it gone), there is nothing to end.
        const key = this.k("a", change.space, change.ip);
        if (gone.has(key)) break;
        guards.push({ compare: { key, target: "VALUE", result: "EQUAL", value: this.holdOf(change.space, change.ip, "cooling") }, orAbsent: true });
        ops.push({ delete: { key } });
        break;
      }
      case "bind": {
        const b = change.binding;
        ops.push({ put: { key: this.k("bind", b.space, b.pod), value: JSON.stringify(b) } });
        if (b.releasedAt !== null) ops.push({ put: { key: this.k("a", b.space, b.ip), value: holdMarker("sticky", b.space, b.family, b.ip) } });
        break;
      }
      case "unbind": {
        ops.push({ delete: { key: this.k("bind", change.space, change.pod) } });
        if (!change.heldIp) break;
        // The pod may have taken its address back on another node meanwhile: delete our hold only.
        const key = this.k("a", change.space, change.heldIp);
        if (gone.has(key)) break;
        guards.push({ compare: { key, target: "VALUE", result: "EQUAL", value: this.holdOf(change.space, change.heldIp, "sticky") }, orAbsent: true });
        ops.push({ delete: { key } });
        break;
      }
    }
  }

  commit(changes: Change[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * One transaction for a batch of callers; a failed compare becomes a ConflictError naming
   * the losers. When only changes already done failed (their keys gone), the transaction is
   * built again without what they would do at those keys, on the condition that nothing was
   * created there meanwhile; each round removes at least one orAbsent guard, so it ends.
   */
  private async commitOne(pending: Pending[], now: number): Promise<void> {
    const gone = new Set<string>();
    const prepared: Prepared[] = [];
    for (const p of pending) for (const c of p.changes) prepared.push(await this.prepare(c, gone));
    for (;;) {
      const guards: Guard[] = [];
      const ops: Op[] = [];
      for (const p of prepared) this.translate(p, now, gone, guards, ops);
      for (const key of gone) guards.push({ compare: { key, target: "CREATE", result: "EQUAL", create_revision: 0 } });
      // etcd refuses a transaction that writes one key twice (two callers moving one cursor):
      // the later write is the one that stands.
      const byKey = new Map<string, Op>();
      for (const op of ops) {
        const key = "put" in op ? op.put.key : "delete" in op ? op.delete.key : op.range.key;
        byKey.delete(key);
        byKey.set(key, op);
      }
      const compares = guards.map((g) => g.compare);
      const result = await this.client.txn(compares, [...byKey.values()], compares.map((c) => ({ range: { key: c.key } })));
      if (result.succeeded) return;
      const failed = guards.flatMap((g, i) => {
        const kv = result.ranges[i]![0];
        return holds(g.compare, kv) ? [] : [{ g, kv }];
      });
      if (failed.length === 0 || failed.some((f) => !f.g.orAbsent || f.kv !== undefined)) {
        const taken = failed.flatMap((f) => (f.kv ? [JSON.parse(f.kv.value) as AllocationRecord | HoldMarker] : [])).map((r) => ({ space: r.space, family: r.family, ip: r.ip }));
        throw new ConflictError(taken);
      }
      for (const { g } of failed) gone.add(g.compare.key);
    }
  }

  /**
   * Group commit: while one transaction is in flight, later callers queue; then as many as
   * fit etcd's limit on operations go out in one transaction. If that one fails its compares,
   * each caller is retried alone so only the real losers see a conflict.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch: Pending[] = [];
        const cursors = new Set<string>();
        let writes = 0;
        while (this.queue.length > 0) {
          const cost = costOf(this.queue[0]!.changes, cursors);
          if (batch.length > 0 && writes + cost.writes > MAX_OPS) break;
          batch.push(this.queue.shift()!);
          for (const pool of cost.cursors) cursors.add(pool);
          writes += cost.writes;
        }
        const started = performance.now();
        const now = Date.now();
        try {
          await this.commitOne(batch, now);
          this.onCommit?.((performance.now() - started) / 1000, batch.length);
          for (const p of batch) p.resolve();
        } catch (err) {
          if (batch.length === 1 || !(err instanceof ConflictError)) {
            for (const p of batch) p.reject(err);
            continue;
          }
          for (const p of batch) await this.commitOne([p], now).then(p.resolve, p.reject);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.keepAlive);
    while (this.flushing || this.queue.length > 0 || this.lookingUp) await Bun.sleep(5);
  }
}
