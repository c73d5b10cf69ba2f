/**
 * The daemon's allocation core: it owns the in-memory index of taken addresses (one extent
 * set per network and family), decides every address with the pure allocator, and makes
 * each decision durable through the Store before answering. Operations on one attachment
 * are serialised, so a retried ADD racing its own DEL cannot interleave; different
 * attachments run concurrently and share store commits.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, formatIp, parseIp } from "../ipam/address.ts";
import { allocateNext, checkStatic } from "../ipam/allocator.ts";
import { ExtentSet } from "../ipam/freespace.ts";
import { parseRangeSets, type RangeSet } from "../ipam/pool.ts";
import type { AddRequest, AllocatedIp, AttachmentKey, CheckRequest, DelRequest, GcRequest } from "../protocol.ts";
import { type AllocationRecord, type Change, cursorKey, type Store } from "../store/store.ts";

const toAllocatedIp = (r: AllocationRecord): AllocatedIp => ({
  family: r.family,
  address: r.ip,
  prefix: r.prefix,
  ...(r.gateway ? { gateway: r.gateway } : {}),
});

export class IpamService {
  private readonly taken = new Map<string, ExtentSet>();
  private readonly cursors = new Map<string, bigint>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private liveAllocations = 0;

  private constructor(
    private readonly store: Store,
    private readonly node: string,
  ) {}

  static async start(store: Store, node: string): Promise<IpamService> {
    const service = new IpamService(store, node);
    await store.forEachTaken((network, family, ip) => {
      const parsed = parseIp(ip);
      if (parsed && service.takenSet(network, family).add(parsed.value)) service.liveAllocations++;
    });
    for (const [pool, ip] of await store.cursors()) {
      const parsed = parseIp(ip);
      if (parsed) service.cursors.set(pool, parsed.value);
    }
    return service;
  }

  get allocationCount(): number {
    return this.liveAllocations;
  }

  private takenSet(network: string, family: Family): ExtentSet {
    const key = `${network}/${family}`;
    let set = this.taken.get(key);
    if (!set) {
      set = new ExtentSet();
      this.taken.set(key, set);
    }
    return set;
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
    const rangeSets = parseRangeSets(req.ranges);
    const requested = (req.requestedIps ?? []).map((text) => {
      const ip = parseIp(text);
      if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `requested IP "${text}" is not an IP address`);
      return ip;
    });
    return this.serialised(req.network, req, async () => {
      const existing = await this.store.attachment(req.network, req);
      if (existing.length > 0) return existing.map(toAllocatedIp);
      return this.allocate(req, rangeSets, requested);
    });
  }

  private async allocate(req: AddRequest, rangeSets: RangeSet[], requested: { family: Family; value: bigint }[]): Promise<AllocatedIp[]> {
    const marked: { set: ExtentSet; value: bigint }[] = [];
    const changes: Change[] = [];
    const cursorUpdates: [string, bigint][] = [];
    const unclaimed = new Set(requested);
    const now = Date.now();
    try {
      for (const set of rangeSets) {
        const taken = this.takenSet(req.network, set.family);
        const wanted = requested.find((ip) => unclaimed.has(ip) && set.ranges.some((r) => ip.family === r.family && ip.value >= r.start && ip.value <= r.end));
        let value: bigint;
        let range;
        if (wanted) {
          unclaimed.delete(wanted);
          const check = checkStatic(set, taken, wanted.family, wanted.value);
          const text = formatIp(wanted.value, wanted.family);
          if (!check.ok) {
            if (check.reason === "gateway") throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is the gateway of range set ${set.key}`);
            throw new IpamError(ErrorCode.AddressInUse, `requested IP ${text} is already allocated to another container in network ${req.network}`);
          }
          value = wanted.value;
          range = check.range;
        } else {
          const pool = cursorKey(req.network, set.key);
          const picked = allocateNext(set, taken, this.cursors.get(pool) ?? null);
          if (!picked) {
            throw new IpamError(
              ErrorCode.PoolExhausted,
              `pool ${pool} is exhausted: all ${set.size} addresses are in use`,
              `no IP addresses available in range set ${set.key}`,
            );
          }
          value = picked.value;
          range = picked.range;
        }
        taken.add(value);
        marked.push({ set: taken, value });
        const ip = formatIp(value, set.family);
        const pool = cursorKey(req.network, set.key);
        cursorUpdates.push([pool, value]);
        changes.push({ op: "cursor", pool, ip });
        changes.push({
          op: "allocate",
          record: {
            network: req.network,
            ip,
            family: set.family,
            prefix: range.subnet.prefix,
            gateway: formatIp(range.gateway, set.family),
            pool: set.key,
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
      for (const { set, value } of marked) set.delete(value);
      throw err;
    }
    for (const [pool, value] of cursorUpdates) this.cursors.set(pool, value);
    this.liveAllocations += marked.length;
    return changes.flatMap((c) => (c.op === "allocate" ? [toAllocatedIp(c.record)] : []));
  }

  async del(req: DelRequest): Promise<void> {
    await this.serialised(req.network, req, async () => {
      const existing = await this.store.attachment(req.network, req);
      await this.release(existing, "cni del");
    });
  }

  /** Frees addresses only after the release is durable, so a crash can never hand one out twice. */
  private async release(records: AllocationRecord[], cause: string): Promise<void> {
    if (records.length === 0) return;
    await this.store.commit(records.map((r) => ({ op: "release", network: r.network, ip: r.ip, cause })));
    for (const r of records) {
      const ip = parseIp(r.ip);
      if (ip && this.takenSet(r.network, r.family).delete(ip.value)) this.liveAllocations--;
    }
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
    const released: string[] = [];
    for (const key of await this.store.attachments(req.network)) {
      if (valid.has(`${key.containerID}\0${key.ifname}`)) continue;
      await this.serialised(req.network, key, async () => {
        const records = await this.store.attachment(req.network, key);
        await this.release(records, cause);
        released.push(...records.map((r) => r.ip));
      });
    }
    return released;
  }
}
