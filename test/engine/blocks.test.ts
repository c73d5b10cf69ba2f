/** Where a node looks for a free block (src/engine/blocks.ts): its own place in the pool, wrapping around. */
import { expect, test } from "bun:test";
import { freeBlock, OwnViews, ownView, searchStart } from "../../src/engine/blocks.ts";
import { emptyPlan } from "../../src/engine/plan.ts";
import { AddressState } from "../../src/engine/state.ts";
import { parseIp } from "../../src/ipam/address.ts";
import { ExtentSet } from "../../src/ipam/freespace.ts";
import { parseRangeSet } from "../../src/ipam/pool.ts";

const sizes = { v4: 28, v6: 124 };
const v = (ip: string) => parseIp(ip)!.value;
const set = parseRangeSet([{ subnet: "10.0.0.0/24" }]); // 16 blocks of /28

test("nodes start their search at different blocks, each always at the same one", () => {
  const starts = ["node-a", "node-b", "node-c", "worker-1", "worker-2"].map((n) => freeBlock(new Set(), set, new ExtentSet(), sizes, n));
  expect(new Set(starts).size).toBeGreaterThanOrEqual(4);
  expect(freeBlock(new Set(), set, new ExtentSet(), sizes, "node-a")).toBe(starts[0]!);
  expect(searchStart("node-a", 16n)).toBe(searchStart("node-a", 16n));
  expect(searchStart("anything", 0n)).toBe(0n);
});

test("from its start a node takes the next block that is free, wrapping around to the lowest", () => {
  const start = Number(searchStart("node-a", 16n));
  const block = (i: number) => v(`10.0.0.${i * 16}`);
  const owners = new Set([start, (start + 1) % 16].map(block));
  expect(freeBlock(owners, set, new ExtentSet(), sizes, "node-a")).toBe(`10.0.0.${((start + 2) % 16) * 16}/28`);
  // Every block owned but one below the start: found after wrapping.
  const lastFree = (start + 15) % 16;
  const allButOne = new Set(Array.from({ length: 16 }, (_, i) => i).filter((i) => i !== lastFree).map(block));
  expect(freeBlock(allButOne, set, new ExtentSet(), sizes, "node-a")).toBe(`10.0.0.${lastFree * 16}/28`);
  // A block whose only free address is the gateway is not free; none left is null.
  const taken = new ExtentSet();
  for (let i = 0; i < 16; i++) if (i !== 1) taken.add(v(`10.0.0.${lastFree * 16 + i}`));
  const gatewayBlock = parseRangeSet([{ subnet: "10.0.0.0/24", gateway: `10.0.0.${lastFree * 16 + 1}` }]);
  expect(freeBlock(allButOne, gatewayBlock, taken, sizes, "node-a")).toBeNull();
  expect(freeBlock(new Set(Array.from({ length: 16 }, (_, i) => block(i))), set, new ExtentSet(), sizes, "node-a")).toBeNull();
});

test("ranges that do not start on a block and sets of several ranges are one sequence of blocks", () => {
  const two = parseRangeSet([{ subnet: "10.1.0.0/24", rangeStart: "10.1.0.20", rangeEnd: "10.1.0.40" }, { subnet: "10.2.0.0/28" }]);
  // Blocks 10.1.0.16/28 and 10.1.0.32/28 of the first range, 10.2.0.0/28 of the second: whoever starts where, all three are found.
  const found = new Set<string>();
  const owners = new Set<bigint>();
  for (let i = 0; i < 3; i++) {
    const cidr = freeBlock(owners, two, new ExtentSet(), sizes, "node-a")!;
    found.add(cidr);
    owners.add(v(cidr.split("/")[0]!));
  }
  expect([...found].sort()).toEqual(["10.1.0.16/28", "10.1.0.32/28", "10.2.0.0/28"]);
  expect(freeBlock(owners, two, new ExtentSet(), sizes, "node-a")).toBeNull();
  // IPv6: a /64 has 2^60 blocks of /124; the search starts somewhere in them and finds one at once.
  const six = parseRangeSet([{ subnet: "fd00::/64" }]);
  expect(freeBlock(new Set(), six, new ExtentSet(), sizes, "node-a")).toMatch(/^fd00::[0-9a-f:]*\/124$/);
});

test("a node's part of a range set is worked out once, and again whenever its blocks change", () => {
  const state = new AddressState();
  const views = new OwnViews(sizes);
  const space = "net1|10.0.0.0/24";
  const cidrsOf = (view: ReturnType<typeof ownView>) => view.ranges.map((r) => `${r.start - v("10.0.0.0")}-${r.end - v("10.0.0.0")}`);
  expect(views.of(state, space, set).ranges).toEqual([]);
  state.loadBlocks([{ space, cidr: "10.0.0.32/28", node: "node-a" }, { space, cidr: "10.0.0.64/28", node: "node-b" }], "node-a", (cidr) => v(cidr.split("/")[0]!));
  const first = views.of(state, space, set);
  expect(cidrsOf(first)).toEqual(["32-47"]);
  expect(views.of(state, space, set)).toBe(first); // nothing changed: the same view, not worked out again
  const claim = emptyPlan();
  claim.claims.push({ space, cidr: "10.0.0.0/28", node: "node-a" });
  state.settle(claim);
  expect(cidrsOf(views.of(state, space, set))).toEqual(["1-15", "32-47"]); // the subnet's own address is not handed out
  const unclaim = emptyPlan();
  unclaim.unclaims.push({ space, cidr: "10.0.0.32/28", node: "node-a" });
  state.settle(unclaim);
  expect(cidrsOf(views.of(state, space, set))).toEqual(["1-15"]);
  // Another space's blocks are not this one's, whatever range set they share.
  expect(views.of(state, "net2|10.0.0.0/24", set).ranges).toEqual([]);
  // Always what ownView works out from the blocks as they are.
  expect(views.of(state, space, set)).toEqual(ownView(state.ownedBlocks(space), set, sizes));
});
