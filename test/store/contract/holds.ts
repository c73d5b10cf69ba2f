/**
 * The Store contract: holds (an address resting after release, or parked for a sticky pod)
 * and sticky bindings — store operations, judged like allocations, replayed as holds.
 */
import { expect, test } from "bun:test";
import { ConflictError } from "../../../src/store/store.ts";
import { type ContractTarget, cooling, failureOf, record, sticky, taken, takenWithKind } from "./support.ts";

export function holdContract(target: ContractTarget): void {
  test("a hold keeps a free address from allocation; it conflicts with an allocation, repeats as a no-op, and ends with unhold", async () => {
    const store = await target.open();
    await store.commit([{ op: "hold", hold: cooling("10.0.0.2") }]);
    expect(await failureOf(store.commit([{ op: "allocate", record: record("10.0.0.2", "thief") }]))).toBeInstanceOf(ConflictError);
    await store.commit([{ op: "hold", hold: cooling("10.0.0.2") }]); // the same hold again: nothing to do
    await store.commit([{ op: "allocate", record: record("10.0.0.3", "c1") }]);
    const onAllocated = await failureOf(store.commit([{ op: "hold", hold: cooling("10.0.0.3") }]));
    expect((onAllocated as ConflictError).taken).toEqual([{ space: "net1", family: 4, ip: "10.0.0.3" }]);
    // A hold of another kind is not this one: unholding it as this one conflicts.
    expect(await failureOf(store.commit([{ op: "unhold", hold: sticky("10.0.0.2", "p:default/x") }]))).toBeInstanceOf(ConflictError);
    await store.commit([{ op: "unhold", hold: cooling("10.0.0.2") }]);
    await store.commit([{ op: "unhold", hold: cooling("10.0.0.2") }]); // found free: nothing to do
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "next") }]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/4/10.0.0.3"]);
    await store.close();
  }, 30_000);

  test("release then hold, and unhold then allocate, are swaps within one commit", async () => {
    const store = await target.open();
    const r = record("10.0.0.7", "web-0-a");
    await store.commit([{ op: "allocate", record: r }]);
    const parked = sticky(r.ip, "web:default/web-0");
    const binding = { space: "net1", pod: "web:default/web-0", family: 4 as const, ip: r.ip, releasedAt: 5 };
    await store.commit([{ op: "release", record: r, cause: "cni del" }, { op: "hold", hold: parked }, { op: "bind", binding }]);
    expect(await takenWithKind(store)).toEqual(["net1/4/10.0.0.7 held"]);
    expect(await failureOf(store.commit([{ op: "allocate", record: record(r.ip, "thief") }]))).toBeInstanceOf(ConflictError);
    const back = record(r.ip, "web-0-b", { createdAt: 1_700_000_009_000 });
    await store.commit([{ op: "unhold", hold: parked }, { op: "allocate", record: back }, { op: "bind", binding: { ...binding, releasedAt: null } }]);
    expect(await store.holders(r.ip)).toEqual([back]);
    expect(await takenWithKind(store)).toEqual(["net1/4/10.0.0.7 allocated"]);
    expect(await store.holds()).toEqual([]);
    // A release found gone still leaves its hold on the free address.
    await store.commit([{ op: "release", record: back, cause: "operator" }]);
    await store.commit([{ op: "release", record: back, cause: "cni del" }, { op: "hold", hold: cooling(r.ip) }]);
    expect(await takenWithKind(store)).toEqual(["net1/4/10.0.0.7 held"]);
    await store.close();
  }, 30_000);

  test("holds and bindings are listed with their details and replayed as holds, not allocations, after reopening", async () => {
    const store = await target.open();
    const cooled = record("10.0.0.2", "c1");
    const parked = record("10.0.0.3", "c2");
    const live = record("10.0.0.4", "c3");
    const other = { ...record("10.9.0.2", "c4"), space: "@ipv4", network: "n2", pool: "v4", rangeSet: null };
    await store.commit([cooled, parked, live, other].map((r) => ({ op: "allocate" as const, record: r })));
    await store.commit([{ op: "release", record: cooled, cause: "cni del" }, { op: "hold", hold: cooling(cooled.ip, 1_700_000_099_000) }]);
    const binding = { space: "net1", pod: "p:default/pod-c2", family: 4 as const, ip: parked.ip, releasedAt: 1_700_000_050_000 };
    await store.commit([{ op: "release", record: parked, cause: "cni del" }, { op: "hold", hold: sticky(parked.ip, binding.pod) }, { op: "bind", binding }]);
    await store.commit([{ op: "release", record: other, cause: "cni del" }, { op: "hold", hold: cooling(other.ip, 1_700_000_098_000, "@ipv4") }]);
    const expected = ["@ipv4/4/10.9.0.2 held", "net1/4/10.0.0.2 held", "net1/4/10.0.0.3 held", "net1/4/10.0.0.4 allocated"];
    expect(await takenWithKind(store)).toEqual(expected);
    const again = await target.reopen(store);
    expect(await takenWithKind(again)).toEqual(expected);
    expect(await takenWithKind(again, "net1")).toEqual(expected.slice(1));
    const holds = (await again.holds()).map((h) => `${h.space} ${h.ip} ${h.kind} ${h.until} ${h.pod}`).sort();
    expect(holds).toEqual(["@ipv4 10.9.0.2 cooling 1700000098000 null", "net1 10.0.0.2 cooling 1700000099000 null", "net1 10.0.0.3 sticky null p:default/pod-c2"]);
    expect((await again.holds("@ipv4")).map((h) => h.ip)).toEqual(["10.9.0.2"]);
    expect(await again.bindings()).toEqual([binding]);
    expect(await again.binding("net1", binding.pod)).toEqual(binding);
    expect(await again.binding("net1", "p:default/nobody")).toBeUndefined();
    await again.commit([{ op: "unbind", space: "net1", pod: binding.pod }]);
    expect(await again.bindings()).toEqual([]);
    expect((await again.allocations({})).map((r) => r.ip)).toEqual([live.ip]);
    await again.close();
  }, 30_000);
}
