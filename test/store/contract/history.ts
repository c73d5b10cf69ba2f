/** The Store contract: history — every change of an address explained, newest first, pruned by age. */
import { expect, test } from "bun:test";
import type { Store } from "../../../src/store/store.ts";
import { type ContractTarget, record, taken } from "./support.ts";

export function historyContract(target: ContractTarget): void {
  test("history: by address, container, pod and kind, newest first, a page at a time", async () => {
    const store = await target.open();
    const a = record("10.0.0.2", "c1");
    const b = record("10.0.0.3", "c2", { podNamespace: "prod", podName: "api-0" });
    await store.commit([{ op: "allocate", record: a }]);
    await store.commit([{ op: "allocate", record: b }]);
    await store.commit([{ op: "release", record: a, cause: "cni del" }]);
    await store.commit([{ op: "release", record: b, cause: "netns gone", kind: "reclaimed" }]);
    const again = record("10.0.0.2", "c3");
    await store.commit([{ op: "allocate", record: again, kind: "imported", cause: "import host-local" }]);
    const events = (filter: Parameters<Store["history"]>[0]) => store.history(filter).then((es) => es.map((e) => `${e.kind} ${e.ip} ${e.containerID}`));
    expect(await events({ ip: "10.0.0.2" })).toEqual(["imported 10.0.0.2 c3", "released 10.0.0.2 c1", "allocated 10.0.0.2 c1"]);
    expect(await events({ containerID: "c2" })).toEqual(["reclaimed 10.0.0.3 c2", "allocated 10.0.0.3 c2"]);
    expect(await events({ podNamespace: "prod", podName: "api-0" })).toEqual(["reclaimed 10.0.0.3 c2", "allocated 10.0.0.3 c2"]);
    expect(await events({ kind: "reclaimed" })).toEqual(["reclaimed 10.0.0.3 c2"]);
    expect(await events({ kind: "allocated" })).toEqual(["allocated 10.0.0.3 c2", "allocated 10.0.0.2 c1"]);
    const all = await store.history({});
    expect(all.map((e) => e.kind)).toEqual(["imported", "reclaimed", "released", "allocated", "allocated"]);
    const first = await store.history({ limit: 2 });
    const rest = await store.history({ before: { at: first[1]!.at, id: first[1]!.id } });
    expect([...first, ...rest]).toEqual(all);
    const byIp = await store.history({ ip: "10.0.0.2", limit: 1 });
    expect((await store.history({ ip: "10.0.0.2", before: { at: byIp[0]!.at, id: byIp[0]!.id } })).map((e) => e.kind)).toEqual(["released", "allocated"]);
    await store.close();
  }, 30_000);

  test("history retention: pruneHistory drops the events older than its bound, counts them, and touches nothing else", async () => {
    const store = await target.open();
    await store.commit([{ op: "allocate", record: record("10.0.0.2", "c1") }]);
    const [first] = await store.history({ containerID: "c1" });
    while (Date.now() <= first!.at) await Bun.sleep(1); // the next commit's events are a millisecond younger
    await store.commit([{ op: "release", record: record("10.0.0.2", "c1"), cause: "cni del" }, { op: "allocate", record: record("10.0.0.3", "c2") }]);
    const second = (await store.history({ containerID: "c2" }))[0]!.at;
    expect(second).toBeGreaterThan(first!.at);
    const events = async () => (await store.history({})).map((e) => `${e.kind} ${e.containerID}`);
    expect(await store.pruneHistory(first!.at)).toBe(0); // strictly older only
    expect(await store.pruneHistory(second)).toBe(1);
    expect(await events()).toEqual(expect.arrayContaining(["released c1", "allocated c2"]));
    expect((await events()).length).toBe(2);
    expect(await store.pruneHistory(second)).toBe(0);
    expect(await store.pruneHistory(second + 1)).toBe(2);
    expect(await events()).toEqual([]);
    expect(await taken(store)).toEqual(["net1/4/10.0.0.3"]);
    await store.close();
  }, 30_000);
}
