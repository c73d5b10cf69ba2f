/**
 * The etcd store's group commit with several transactions in the air (flights.ts): a queue
 * longer than one batch is sent as overlapping transactions, yet no two callers writing one
 * key fly at once, and cursor moves stand in the order they were planned even when the
 * transactions land out of order, their callers answered only once their move is durable.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient, type Op } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import { AttachmentHeld, LimitError } from "../../src/store/store.ts";
import { addressPart, Layout } from "../../src/store/etcd/layout.ts";
import { cleanup } from "../e2e/harness.ts";
import { record } from "./contract/support.ts";
import { type EtcdCluster, startEtcd } from "./etcd-cluster.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
}, 30_000);
afterAll(cleanup);

const octet = (ip: string) => Number(ip.split(".").pop());

/**
 * A real client that records every write transaction: when it was sent and when it landed, the
 * most in the air at once, and the cursor values written so far. `holdFirst` keeps the first
 * transaction from being sent until `release()` (everything still goes to the real etcd).
 */
class WatchedClient extends EtcdClient {
  inAir = 0;
  mostInAir = 0;
  /** Transactions with a namespace limit's range compare, in the air now and at most. */
  limitedInAir = 0;
  mostLimitedInAir = 0;
  log: string[] = [];
  cursorsWritten: string[] = [];
  private gate: Promise<void> | undefined;
  release = () => {};

  holdFirst(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
    const [compare, success] = args;
    const writes = success.filter((op): op is Extract<Op, { put: unknown }> => "put" in op);
    if (success.every((op) => "range" in op)) return super.txn(...args);
    const last = (k: string) => k.slice(k.lastIndexOf("/") + 1);
    const deletes = success.flatMap((op) => ("delete" in op && op.delete.key.includes("/a/") ? [`del:${last(op.delete.key)}`] : []));
    const name = [...writes.map((op) => op.put.key).filter((k) => k.includes("/a/")).map(last), ...deletes].join(",") || "cursor only";
    const gate = this.gate;
    this.gate = undefined;
    await gate;
    const limited = compare.some((c) => "rangeEnd" in c && c.rangeEnd !== undefined);
    this.inAir++;
    this.mostInAir = Math.max(this.mostInAir, this.inAir);
    if (limited) this.mostLimitedInAir = Math.max(this.mostLimitedInAir, ++this.limitedInAir);
    this.log.push(`sent ${name}`);
    try {
      const result = await super.txn(...args);
      if (result.succeeded) for (const op of writes) if (op.put.key.includes("/cur/")) this.cursorsWritten.push(op.put.value);
      return result;
    } finally {
      this.inAir--;
      if (limited) this.limitedInAir--;
      this.log.push(`landed ${name}`);
    }
  }
}

describe("etcd: transactions in the air", () => {
  test("a queue longer than one batch goes out as transactions in the air at once", async () => {
    const client = new WatchedClient(etcd.endpoints);
    const store = new EtcdStore(client, `/flights-${process.pid}/`, "node-a");
    const adds = Array.from({ length: 80 }, (_, i) => record(`10.0.6.${i + 2}`, `c${i}`, { podNamespace: null, podName: null }));
    await Promise.all(adds.map((r) => store.commit([{ op: "allocate", record: r }])));
    expect(client.mostInAir).toBeGreaterThan(1);
    expect((await store.allocations({})).map((r) => r.ip).sort()).toEqual(adds.map((r) => r.ip).sort());
  }, 30_000);

  test("cursor moves stand in plan order when the first transaction lands last; each caller is answered once its move is durable", async () => {
    const client = new WatchedClient(etcd.endpoints);
    const prefix = `/flight-cursors-${process.pid}/`;
    const store = new EtcdStore(client, prefix, "node-a");
    client.holdFirst();
    const answeredAt = new Map<string, string[]>();
    const move = (i: number) => {
      const ip = `10.0.7.${i + 2}`;
      return store.commit([{ op: "cursor", rangeSet: "net1|p", ip }, { op: "allocate", record: record(ip, `c${i}`, { podNamespace: null, podName: null }) }]).then(() => answeredAt.set(ip, [...client.cursorsWritten]));
    };
    // The first goes alone and is held; 60 more queue behind it and fly meanwhile.
    const first = move(0);
    const rest = Array.from({ length: 60 }, (_, i) => move(i + 1));
    while (client.log.filter((l) => l.startsWith("landed")).length < 2) await Bun.sleep(5);
    client.release();
    await Promise.all([first, ...rest]);
    expect(client.log.indexOf(`landed ${addressPart("10.0.7.2")}`)).toBeGreaterThan(client.log.findIndex((l) => l.startsWith("landed")));
    expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.7.62"]]));
    for (const [ip, written] of answeredAt) {
      expect({ ip, durable: Math.max(...written.map(octet)) >= octet(ip) }).toEqual({ ip, durable: true });
    }
    // Written in plan order: no cursor value is ever written after a later one.
    expect(client.cursorsWritten.map(octet)).toEqual([...client.cursorsWritten.map(octet)].sort((a, b) => a - b));
  }, 30_000);

  test("two callers writing one address never fly at once: a release waits for its allocation in the air", async () => {
    const client = new WatchedClient(etcd.endpoints);
    const prefix = `/flight-keys-${process.pid}/`;
    const store = new EtcdStore(client, prefix, "node-a");
    const r = record("10.0.8.2", "same", { podNamespace: null, podName: null });
    const other = (i: number) => store.commit([{ op: "allocate", record: record(`10.0.8.${i + 3}`, `o${i}`, { podNamespace: null, podName: null }) }]);
    client.holdFirst();
    const allocated = store.commit([{ op: "allocate", record: r }]);
    // Full batches behind it, the release of the held allocation among them.
    const before = Array.from({ length: 10 }, (_, i) => other(i));
    const released = store.commit([{ op: "release", record: r, cause: "cni del" }]);
    const after = Array.from({ length: 60 }, (_, i) => other(i + 10));
    while (client.log.filter((l) => l.startsWith("landed")).length < 1) await Bun.sleep(5);
    client.release();
    await Promise.all([allocated, released, ...before, ...after]);
    expect(client.mostInAir).toBeGreaterThan(1);
    const landed = client.log.indexOf(`landed ${addressPart(r.ip)}`);
    expect(landed).toBeGreaterThan(-1);
    expect(client.log.findIndex((l) => l.startsWith("sent") && l.includes(`del:${addressPart(r.ip)}`))).toBeGreaterThan(landed);
    // Had the release gone first, it would have found nothing to release, and the allocation would stand.
    expect(await client.range(new Layout(prefix).allocation(r.space, r.ip))).toEqual([]);
    expect((await store.history({ ip: r.ip })).map((e) => e.kind)).toEqual(["released", "allocated"]);
  }, 30_000);

  test("commits counted against one namespace limit fly one at a time per daemon: of 16 from two daemons exactly the limit commit, the rest are refused", async () => {
    const prefix = `/flight-limits-${process.pid}/`;
    const clients = [new WatchedClient(etcd.endpoints), new WatchedClient(etcd.endpoints)];
    const stores = clients.map((c, i) => new EtcdStore(c, prefix, `node-${i}`));
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        stores[i % 2]!.commit([{ op: "allocate", record: record(`10.0.9.${i + 2}`, `l${i}`, { pool: "tenant", podNamespace: "team-a" }) }, { op: "limit", pool: "tenant", namespace: "team-a", max: 5 }]),
      ),
    );
    // Several in the air would recount each other out of their rounds ("try again"), not refuse.
    expect(clients.map((c) => c.mostLimitedInAir)).toEqual([1, 1]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LimitError);
  }, 30_000);
});

describe("etcd: a commit sent twice", () => {
  /** A real client whose first write transaction is sent twice, as call() does when the first answer is lost (the first attempt applied). */
  class ResendingClient extends EtcdClient {
    resent = false;
    override async txn(...args: Parameters<EtcdClient["txn"]>): ReturnType<EtcdClient["txn"]> {
      if (this.resent || args[1].every((op) => "range" in op)) return super.txn(...args);
      this.resent = true;
      await super.txn(...args);
      return super.txn(...args);
    }
  }

  test("a batch whose first attempt applied, answered by its second, commits once: no conflict with itself, one event each", async () => {
    const client = new ResendingClient(etcd.endpoints);
    const store = new EtcdStore(client, `/resent-${process.pid}/`, "node-a");
    const records = [record("10.0.10.2", "r1"), record("10.0.10.3", "r2")];
    await store.commit(records.map((r) => ({ op: "allocate" as const, record: r })));
    expect(client.resent).toBe(true);
    expect((await store.allocations({})).map((r) => r.containerID)).toEqual(["r1", "r2"]);
    expect((await store.history({})).map((e) => `${e.kind} ${e.containerID}`)).toEqual(["allocated r2", "allocated r1"]);
  }, 30_000);

  test("an ADD's commit sent twice is not refused by its own first attempt as a held attachment", async () => {
    const client = new ResendingClient(etcd.endpoints);
    const store = new EtcdStore(client, `/resent-unheld-${process.pid}/`, "node-a");
    const v4 = record("10.0.12.2", "dual");
    const v6 = record("fd00::12", "dual");
    await store.commit([{ op: "unheld", network: "net1", containerID: "dual", ifname: "eth0" }, { op: "allocate", record: v4 }, { op: "allocate", record: v6 }]);
    expect(client.resent).toBe(true);
    expect(await store.attachment("net1", { containerID: "dual", ifname: "eth0" })).toEqual([v4, v6]);
    expect((await store.history({})).map((e) => e.ip)).toEqual(["fd00::12", "10.0.12.2"]);
    // Another ADD of it, sent twice too, is refused: what it found there is not its own.
    await expect(store.commit([{ op: "unheld", network: "net1", containerID: "dual", ifname: "eth0" }, { op: "allocate", record: record("10.0.12.3", "dual") }])).rejects.toBeInstanceOf(AttachmentHeld);
  }, 30_000);

  test("a commit at its namespace's limit, sent twice, commits once and is not refused by its own first attempt", async () => {
    const client = new ResendingClient(etcd.endpoints);
    const store = new EtcdStore(client, `/resent-limit-${process.pid}/`, "node-a");
    const r = record("10.0.11.2", "only", { pool: "tenant", podNamespace: "team-a" });
    await store.commit([{ op: "allocate", record: r }, { op: "limit", pool: "tenant", namespace: "team-a", max: 1 }]);
    expect(client.resent).toBe(true);
    expect(await store.namespaceUse("tenant")).toEqual(new Map([["team-a", 1]]));
    expect((await store.history({})).map((e) => e.containerID)).toEqual(["only"]);
  }, 30_000);
});
