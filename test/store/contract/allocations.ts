/** The Store contract: allocations and releases — committed atomically, never one address twice. */
import { expect, test } from "bun:test";
import { AttachmentHeld, ConflictError } from "../../../src/store/store.ts";
import { type ContractTarget, failureOf, record, taken } from "./support.ts";

export function allocationContract(target: ContractTarget): void {
  test("an allocation is found by attachment, listed, and replayed as taken", async () => {
    const store = await target.open();
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "allocate", record: record("fd00::2", "c1") }]);
    expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([record("10.0.0.2", "c1"), record("fd00::2", "c1")]);
    expect(await store.attachment("net1", { containerID: "c1", ifname: "eth1" })).toEqual([]);
    expect(await store.attachment("net2", { containerID: "c1", ifname: "eth0" })).toEqual([]);
    expect(await store.attachments("net1")).toEqual([{ containerID: "c1", ifname: "eth0" }]);
    expect(await store.attachments("net1", "node-a")).toEqual([{ containerID: "c1", ifname: "eth0" }]);
    expect(await store.attachments("net1", "node-b")).toEqual([]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/6/fd00::2"]);
    await store.close();
  }, 30_000);

  test("release removes exactly its allocation, with its event; cursors round-trip and are overwritten", async () => {
    const store = await target.open();
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.2" }]);
    await store.commit([{ op: "release", record: record("10.0.0.2", "c1"), cause: "test" }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.3" }]);
    expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
    expect(await taken(store)).toEqual([]);
    expect(await store.cursors()).toEqual(new Map([["net1|p", "10.0.0.3"]]));
    expect((await store.history({ ip: "10.0.0.2" })).map((e) => `${e.kind} ${e.cause}`)).toEqual(["released test", "allocated cni add"]);
    await store.close();
  }, 30_000);

  test("an address is held once per space: a duplicate fails its commit whole with a ConflictError naming it; others succeed", async () => {
    const store = await target.open();
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
    const results = await Promise.all([
      failureOf(store.commit([{ op: "allocate", record: record("10.0.0.3", "c2") }, { op: "allocate", record: record("10.0.0.2", "c2") }])),
      failureOf(store.commit([{ op: "allocate", record: record("10.0.0.4", "c3") }])),
      failureOf(store.commit([{ op: "allocate", record: record("10.0.0.2", "c4", { network: "net2" }) }])),
    ]);
    expect(results[0]).toBeInstanceOf(ConflictError);
    expect((results[0] as ConflictError).taken).toEqual([{ space: "net1", family: 4, ip: "10.0.0.2" }]);
    expect(results.slice(1)).toEqual([null, null]);
    // Nothing of the failed commit is left half-written.
    expect(await store.attachment("net1", { containerID: "c2", ifname: "eth0" })).toEqual([]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/4/10.0.0.4", "net2/4/10.0.0.2"]);
    await store.close();
  }, 30_000);

  test("unheld: an attachment's first addresses commit; a commit for one that holds addresses already fails whole with AttachmentHeld", async () => {
    const store = await target.open();
    const unheld = (containerID: string, network = "net1", ifname = "eth0") => ({ op: "unheld" as const, network, containerID, ifname });
    await store.commit([unheld("c1"), { op: "allocate", record: record("10.0.0.2", "c1") }, { op: "allocate", record: record("fd00::2", "c1") }]);
    const results = await Promise.all([
      // A repeated ADD (another address planned): refused, nothing of it written.
      failureOf(store.commit([unheld("c1"), { op: "allocate", record: record("10.0.0.3", "c1") }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.3" }])),
      // The same container on another interface, or in another network, is another attachment.
      failureOf(store.commit([unheld("c1", "net1", "eth1"), { op: "allocate", record: record("10.0.0.4", "c1", { ifname: "eth1" }) }])),
      failureOf(store.commit([unheld("c1", "net2"), { op: "allocate", record: record("10.0.0.2", "c1", { network: "net2", space: "net2" }) }])),
      failureOf(store.commit([unheld("c2"), { op: "allocate", record: record("10.0.0.5", "c2") }])),
    ]);
    expect(results[0]).toBeInstanceOf(AttachmentHeld);
    expect((results[0] as AttachmentHeld).attachment).toEqual({ network: "net1", containerID: "c1", ifname: "eth0" });
    expect(results.slice(1)).toEqual([null, null, null]);
    expect((await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).map((r) => r.ip)).toEqual(["10.0.0.2", "fd00::2"]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.2", "net1/4/10.0.0.4", "net1/4/10.0.0.5", "net1/6/fd00::2", "net2/4/10.0.0.2"]);
    expect(await store.cursors()).toEqual(new Map());
    // Released, the attachment is unheld again.
    await store.commit([{ op: "release", record: record("10.0.0.2", "c1"), cause: "cni del" }, { op: "release", record: record("fd00::2", "c1"), cause: "cni del" }]);
    expect(await failureOf(store.commit([unheld("c1"), { op: "allocate", record: record("10.0.0.3", "c1") }]))).toBeNull();
    await store.close();
  }, 30_000);

  test("a stale release (the address is another attachment's now) conflicts and removes nothing", async () => {
    const store = await target.open();
    const old = record("10.0.0.5", "pod-a");
    await store.commit([{ op: "allocate", record: old }]);
    await store.commit([{ op: "release", record: old, cause: "operator" }]);
    const newer = record("10.0.0.5", "pod-b", { createdAt: 1_700_000_001_000 });
    await store.commit([{ op: "allocate", record: newer }]);
    const stale = await failureOf(store.commit([{ op: "release", record: old, cause: "cni del" }, { op: "cursor", rangeSet: "net1|p", ip: "10.0.0.9" }]));
    expect(stale).toBeInstanceOf(ConflictError);
    expect((stale as ConflictError).taken).toEqual([{ space: "net1", family: 4, ip: "10.0.0.5" }]);
    expect(await store.holders("10.0.0.5")).toEqual([newer]);
    expect(await store.cursors()).toEqual(new Map());
    await store.close();
  }, 30_000);

  test("releasing an allocation that is already released succeeds and touches nothing else", async () => {
    const store = await target.open();
    const gone = record("10.0.0.2", "c1");
    const kept = record("10.0.0.3", "c2");
    await store.commit([{ op: "allocate", record: gone }, { op: "allocate", record: kept }]);
    await store.commit([{ op: "release", record: gone, cause: "cni del" }]);
    // A DEL retried by the runtime, alone and sharing a commit with others.
    await store.commit([{ op: "release", record: gone, cause: "cni del" }]);
    await Promise.all([
      store.commit([{ op: "release", record: gone, cause: "cni del" }, { op: "cursor", rangeSet: "net1|p", ip: gone.ip }]),
      store.commit([{ op: "allocate", record: record("10.0.0.4", "c3") }]),
      store.commit([{ op: "release", record: gone, cause: "cni del" }]),
    ]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.3", "net1/4/10.0.0.4"]);
    expect(await store.attachment("net1", { containerID: "c2", ifname: "eth0" })).toEqual([kept]);
    expect(await store.attachment("net1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
    expect(await store.cursors()).toEqual(new Map([["net1|p", gone.ip]]));
    // Explained once (DESIGN rule 7): the retried releases wrote no second event.
    const kinds = (await store.history({ ip: gone.ip })).map((e) => e.kind);
    expect({ ip: gone.ip, kinds }).toEqual({ ip: gone.ip, kinds: ["released", "allocated"] });
    await store.close();
  }, 30_000);

  test("many concurrent attachment lookups each get their own answer, unknown attachments none", async () => {
    const store = await target.open();
    // Odd containers hold an IPv4 and an IPv6 address, even ones only an IPv4 address.
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        store.commit([{ op: "allocate", record: record(`10.0.0.${i + 2}`, `c${i}`) }, ...(i % 2 ? [{ op: "allocate" as const, record: record(`fd00::${i + 2}`, `c${i}`) }] : [])]),
      ),
    );
    const expected = (i: number) => (i < 60 ? [record(`10.0.0.${i + 2}`, `c${i}`), ...(i % 2 ? [record(`fd00::${i + 2}`, `c${i}`)] : [])] : []);
    // More lookups at once than one etcd transaction may hold; c60 and up are unknown.
    const ids = Array.from({ length: 300 }, (_, n) => (n * 7) % 150);
    const answers = await Promise.all(ids.map((i) => store.attachment("net1", { containerID: `c${i}`, ifname: "eth0" })));
    ids.forEach((i, n) => expect({ containerID: `c${i}`, answer: answers[n] }).toEqual({ containerID: `c${i}`, answer: expected(i) }));
    await store.close();
  }, 30_000);

  test("attachments whose identifiers would alias in a path-like key stay apart, whatever bytes they hold", async () => {
    const store = await target.open();
    const slashed = record("10.0.0.2", "x/eth0", { ifname: "a" });
    const plain = record("10.0.0.3", "x", { ifname: "eth0" });
    const escaped = record("10.0.0.4", "x%2Feth0", { ifname: "a" });
    const unicode = record("10.0.0.5", "x\u00e9/\u2603 %", { ifname: "e/0" });
    await store.commit([slashed, plain, escaped, unicode].map((r) => ({ op: "allocate" as const, record: r })));
    expect(await store.attachment("net1", { containerID: "x", ifname: "eth0" })).toEqual([plain]);
    expect(await store.attachment("net1", { containerID: "x/eth0", ifname: "a" })).toEqual([slashed]);
    expect(await store.attachment("net1", { containerID: "x%2Feth0", ifname: "a" })).toEqual([escaped]);
    expect(await store.attachment("net1", { containerID: unicode.containerID, ifname: "e/0" })).toEqual([unicode]);
    expect(await store.attachment("net1", { containerID: "x", ifname: "eth0/a" })).toEqual([]);
    await store.commit([{ op: "release", record: plain, cause: "cni del" }]);
    expect(await store.attachment("net1", { containerID: "x/eth0", ifname: "a" })).toEqual([slashed]);
    const keys = (await store.attachments("net1")).map((k) => `${k.containerID} ${k.ifname}`).sort();
    expect(keys).toEqual([`${unicode.containerID} e/0`, "x%2Feth0 a", "x/eth0 a"].sort());
    expect((await store.allocations({ containerID: "x/eth0" })).map((r) => r.ip)).toEqual(["10.0.0.2"]);
    await store.close();
  }, 30_000);

  test("one commit carries commitCapacity allocations, atomically", async () => {
    const store = await target.open();
    const count = Math.min(store.commitCapacity, 200);
    const records = Array.from({ length: count }, (_, i) => record(`10.0.${i >> 8}.${(i & 255) + 0}`, `cap${i}`, { podNamespace: "ns", podName: `p${i}` }));
    await store.commit(records.map((r) => ({ op: "allocate" as const, record: r })));
    expect((await taken(store)).length).toBe(count);
    await store.close();
  }, 30_000);

  test("what was committed survives closing and reopening", async () => {
    const store = await target.open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.commit([{ op: "allocate", record: record(`10.0.0.${i + 2}`, `c${i}`) }])));
    await store.commit([{ op: "cursor", rangeSet: "net1|p", ip: "10.0.0.51" }]);
    const again = await target.reopen(store);
    expect((await taken(again)).length).toBe(50);
    expect(await again.attachment("net1", { containerID: "c7", ifname: "eth0" })).toEqual([record("10.0.0.9", "c7")]);
    expect(await again.cursors()).toEqual(new Map([["net1|p", "10.0.0.51"]]));
    await again.close();
  }, 30_000);
}
