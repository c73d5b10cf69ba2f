/**
 * The Store contract: what tenants need of a store — a namespace's limit in a pool, counted
 * exactly in the commit that would pass it, and reservations: holds with who and why, in the
 * address's history.
 */
import { expect, test } from "bun:test";
import { type AllocationRecord, type Change, type Hold, LimitError } from "../../../src/store/store.ts";
import { type ContractTarget, failureOf, record, taken, takenWithKind } from "./support.ts";

/** An allocation from named pool `pool` to a pod of `namespace`. */
const fromPool = (ip: string, containerID: string, pool: string, namespace: string): AllocationRecord =>
  record(ip, containerID, { space: "@ipv4", network: "net1", pool, rangeSet: null, podNamespace: namespace });
const counted = (r: AllocationRecord, max: number): Change[] => [{ op: "allocate", record: r }, { op: "limit", pool: r.pool!, namespace: r.podNamespace!, max }];

const reserved = (ip: string, note = "VIP for ingress"): Hold => ({ space: "@ipv4", family: 4, ip, kind: "reserved", until: null, pod: null, pool: "v4", note, by: "alice@admin-1" });

export function tenantContract(target: ContractTarget): void {
  test("limit: a namespace holds at most max of a pool's addresses; the commit that would pass it fails whole, others are unaffected", async () => {
    const store = await target.open();
    const a1 = fromPool("10.9.0.1", "a1", "v4", "team-a");
    await store.commit(counted(a1, 2));
    await store.commit(counted(fromPool("10.9.0.2", "a2", "v4", "team-a"), 2));
    const refused = await failureOf(store.commit(counted(fromPool("10.9.0.3", "a3", "v4", "team-a"), 2)));
    expect(refused).toBeInstanceOf(LimitError);
    expect(refused).toMatchObject({ pool: "v4", namespace: "team-a", max: 2, count: 2 });
    expect(await taken(store)).toEqual(["@ipv4/4/10.9.0.1", "@ipv4/4/10.9.0.2"]);
    // Another namespace, and the same namespace in another pool, count apart.
    await store.commit(counted(fromPool("10.9.0.4", "b1", "v4", "team-b"), 2));
    await store.commit(counted(fromPool("10.9.0.5", "a4", "v4-other", "team-a"), 2));
    // Two at once past the limit: neither goes, and the refusal counts what the namespace holds
    // (one), not what it would hold part-way through the commit.
    await store.commit([{ op: "release", record: a1, cause: "cni del" }]);
    const two = [...counted(fromPool("10.9.0.6", "a5", "v4", "team-a"), 2), ...counted(fromPool("10.9.0.7", "a6", "v4", "team-a"), 2)];
    const refusedTwo = await failureOf(store.commit(two));
    expect(refusedTwo).toBeInstanceOf(LimitError);
    expect(refusedTwo).toMatchObject({ pool: "v4", namespace: "team-a", max: 2, count: 1 });
    // A release makes room, also after the store is opened again.
    const reopened = await target.reopen(store);
    await reopened.commit(counted(fromPool("10.9.0.3", "a3", "v4", "team-a"), 2));
    expect(await failureOf(reopened.commit(counted(fromPool("10.9.0.8", "a7", "v4", "team-a"), 2)))).toBeInstanceOf(LimitError);
    await reopened.close();
  }, 30_000);

  test("limit: concurrent commits of one namespace pass it by none — exactly max of them are applied", async () => {
    const store = await target.open();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.commit(counted(fromPool(`10.9.1.${i + 1}`, `c${i}`, "v4", "team-a"), 3))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LimitError);
    expect(await store.allocations({ pool: "v4", podNamespace: "team-a" })).toHaveLength(3);
    await store.close();
  }, 30_000);

  test("a reservation is a hold with its pool, note and author, in the address's history, replayed after reopening, ended by unhold", async () => {
    const store = await target.open();
    const vip = reserved("10.9.0.50");
    await store.commit([{ op: "hold", hold: vip, event: { kind: "reserved", cause: "reserved in pool v4 by alice@admin-1: VIP for ingress" } }]);
    // The same reservation again: nothing to do, no second event.
    await store.commit([{ op: "hold", hold: vip, event: { kind: "reserved", cause: "again" } }]);
    expect(await store.holds("@ipv4")).toEqual([vip]);
    const reopened = await target.reopen(store);
    expect(await takenWithKind(reopened)).toEqual(["@ipv4/4/10.9.0.50 held"]);
    expect(await reopened.holds()).toEqual([vip]);
    await reopened.commit([{ op: "unhold", hold: vip, event: { kind: "unreserved", cause: "unreserved in pool v4 by bob" } }]);
    expect(await reopened.holds()).toEqual([]);
    const history = await reopened.history({ ip: vip.ip });
    expect(history.map((e) => [e.kind, e.cause, e.network, e.containerID])).toEqual([
      ["unreserved", "unreserved in pool v4 by bob", "", null],
      ["reserved", "reserved in pool v4 by alice@admin-1: VIP for ingress", "", null],
    ]);
    expect((await reopened.history({ kind: "reserved" })).map((e) => e.ip)).toEqual([vip.ip]);
    await reopened.close();
  }, 30_000);

  test("a pool's use by namespace, cluster-wide or of one node; a namespace's allocations", async () => {
    const store = await target.open();
    await store.commit([
      { op: "allocate", record: fromPool("10.9.0.1", "a1", "v4", "team-a") },
      { op: "allocate", record: { ...fromPool("10.9.0.2", "a2", "v4", "team-a"), node: "node-b" } },
      { op: "allocate", record: fromPool("10.9.0.3", "b1", "v4", "team-b") },
      { op: "allocate", record: fromPool("10.9.0.4", "a3", "v4-other", "team-a") },
      { op: "allocate", record: record("10.0.0.5", "inline", { podNamespace: "team-a" }) },
    ]);
    expect(Object.fromEntries(await store.namespaceUse("v4"))).toEqual({ "team-a": 2, "team-b": 1 });
    expect(Object.fromEntries(await store.namespaceUse("v4", "node-b"))).toEqual({ "team-a": 1 });
    expect(Object.fromEntries(await store.namespaceUse("none"))).toEqual({});
    expect((await store.allocations({ podNamespace: "team-a" })).map((r) => r.ip).sort()).toEqual(["10.0.0.5", "10.9.0.1", "10.9.0.2", "10.9.0.4"]);
    expect((await store.allocations({ podNamespace: "team-a", pool: "v4" })).map((r) => r.ip)).toEqual(["10.9.0.1", "10.9.0.2"]);
    await store.close();
  }, 30_000);
}
