/**
 * The Store contract: what a node claims — blocks of an address space, its liveness, its
 * subnet of a supernet pool — and the emptiness question that lets a gone node's blocks go.
 */
import { expect, test } from "bun:test";
import { ConflictError } from "../../../src/store/store.ts";
import { type ContractTarget, cooling, failureOf, record } from "./support.ts";

export function clusterContract(target: ContractTarget): void {
  test("a block is claimed by one node at a time; only its owner's unclaim lets it go", async () => {
    const store = await target.open();
    const mine = { space: "net1", cidr: "10.0.0.0/26", node: "node-a" };
    await store.commit([{ op: "claim", block: mine }]);
    await store.commit([{ op: "claim", block: mine }]); // claimed by this node already: nothing to do
    const lost = await failureOf(store.commit([{ op: "claim", block: { ...mine, node: "node-b" } }]));
    expect(lost).toBeInstanceOf(ConflictError);
    expect((lost as ConflictError).blocks).toEqual([mine]);
    expect(await failureOf(store.commit([{ op: "unclaim", block: { ...mine, node: "node-b" } }]))).toBeInstanceOf(ConflictError);
    await store.commit([{ op: "claim", block: { space: "@ipv4", cidr: "10.1.0.64/26", node: "node-b" } }]);
    expect((await store.blocks()).sort((a, b) => a.space.localeCompare(b.space))).toEqual([{ space: "@ipv4", cidr: "10.1.0.64/26", node: "node-b" }, mine]);
    expect(await store.blocks("net1")).toEqual([mine]);
    await store.commit([{ op: "unclaim", block: mine }]);
    await store.commit([{ op: "unclaim", block: mine }]); // gone already: nothing to do
    expect(await store.blocks("net1")).toEqual([]);
    await store.close();
  }, 30_000);

  test("a block's emptiness: any allocation or hold between two addresses of a space", async () => {
    const store = await target.open();
    await store.commit([{ op: "allocate", record: record("10.0.0.70", "c1") }, { op: "hold", hold: cooling("10.0.0.130") }]);
    expect(await store.anyTaken("net1", "10.0.0.64", "10.0.0.127")).toBe(true);
    expect(await store.anyTaken("net1", "10.0.0.128", "10.0.0.191")).toBe(true);
    expect(await store.anyTaken("net1", "10.0.0.0", "10.0.0.63")).toBe(false);
    expect(await store.anyTaken("net2", "10.0.0.64", "10.0.0.127")).toBe(false);
    await store.close();
  }, 30_000);

  test("an announced node is live until its announcement runs out after close", async () => {
    const store = await target.open();
    await store.announce("node-x", 2);
    expect(await store.liveNodes()).toContain("node-x");
    const again = await target.reopen(store);
    const deadline = Date.now() + 15_000;
    while ((await again.liveNodes()).includes("node-x") && Date.now() < deadline) await Bun.sleep(200);
    expect(await again.liveNodes()).not.toContain("node-x");
    await again.close();
  }, 30_000);

  test("node subnets: each node keeps its claim, no two nodes one subnet", async () => {
    const store = await target.open();
    const pick = (others: string[], mine: string | null) => mine ?? ["10.244.0.0/24", "10.244.1.0/24"].find((s) => !others.includes(s)) ?? null;
    expect(await store.claimNodeSubnet("pods", "n1", pick)).toBe("10.244.0.0/24");
    expect(await store.claimNodeSubnet("pods", "n2", pick)).toBe("10.244.1.0/24");
    expect(await store.claimNodeSubnet("pods", "n3", pick)).toBeNull();
    expect(await store.claimNodeSubnet("pods", "n1", pick)).toBe("10.244.0.0/24");
    expect((await store.nodeSubnets("pods")).sort((a, b) => a.node.localeCompare(b.node))).toEqual([
      { node: "n1", subnet: "10.244.0.0/24" },
      { node: "n2", subnet: "10.244.1.0/24" },
    ]);
    await store.probe();
    await store.close();
  }, 30_000);
}
