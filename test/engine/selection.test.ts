/** Which pools an ADD may try, in what order: the tenant rules as the pure selection decides them. */
import { describe, expect, test } from "bun:test";
import { select } from "../../src/engine/selection.ts";
import { IpamError } from "../../src/errors.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { choiceGroups } from "../../src/ipam/pool-choice.ts";

const pools = compilePools({
  "a-v4": { addresses: ["10.1.0.0/24"], prefix: 24, namespaces: ["team-a"] },
  "a-v4-more": { addresses: ["10.1.1.0/24"], prefix: 24, namespaces: ["team-a", "team-c"] },
  "a-v6": { addresses: ["fd01::/64"], prefix: 64, namespaces: ["team-a"] },
  "edge-v4": { addresses: ["10.2.0.0/24"], prefix: 24, nodes: ["edge-*", "lab-?"] },
  "v4": { addresses: ["10.0.0.0/24"], prefix: 24 },
  "v6": { addresses: ["fd00::/64"], prefix: 64 },
});
const defaults = choiceGroups([["edge-v4", "v4"], "v6"], pools, "defaultPools");

const refusal = (f: () => unknown): IpamError => {
  try {
    f();
  } catch (err) {
    return err as IpamError;
  }
  throw new Error("not refused");
};

describe("selection", () => {
  test("no pools named: the namespace's own pools first (config order), then the defaults of their family", () => {
    expect(select(pools, defaults, "core-1", { namespace: "team-a", hasRanges: false }).slots).toEqual([
      ["a-v4", "a-v4-more", "v4"],
      ["a-v6", "v6"],
    ]);
    expect(select(pools, defaults, "edge-3", { namespace: "team-c", hasRanges: false }).slots).toEqual([["a-v4-more", "edge-v4", "v4"], ["v6"]]);
    expect(select(pools, defaults, "core-1", { namespace: undefined, hasRanges: false }).slots).toEqual([["v4"], ["v6"]]);
    expect(select(pools, defaults, "lab-1", { namespace: "team-b", hasRanges: false }).slots).toEqual([["edge-v4", "v4"], ["v6"]]);
  });

  test("a namespace's own pools of a family the defaults lack still serve it; no defaults and no own pools is 7", () => {
    expect(select(pools, [], "core-1", { namespace: "team-a", hasRanges: false }).slots).toEqual([["a-v4", "a-v4-more"], ["a-v6"]]);
    const none = refusal(() => select(pools, [], "core-1", { namespace: "team-b", hasRanges: false }));
    expect(none.code).toBe(7);
    expect(none.message).toContain("defaultPools");
  });

  test("a default group none of whose pools serves the pod is refused (106), not left out: no silent single-stack", () => {
    const edgeOnly = choiceGroups(["edge-v4", "v6"], pools, "defaultPools");
    const refused = refusal(() => select(pools, edgeOnly, "core-1", { namespace: "team-b", hasRanges: false }));
    expect(refused.code).toBe(106);
    expect(refused.message).toBe("pool edge-v4 does not serve node core-1 (nodes edge-*, lab-?)");
    // The namespace's own pool of that family is enough.
    expect(select(pools, edgeOnly, "core-1", { namespace: "team-a", hasRanges: false }).slots).toEqual([["a-v4", "a-v4-more"], ["a-v6", "v6"]]);
  });

  test("inline ranges alone: no pool slots at all", () => {
    expect(select(pools, defaults, "core-1", { namespace: "team-a", hasRanges: true }).slots).toEqual([]);
  });

  test("pools named: each element a slot, groups tried in order; pools the pod may not use are left out of a group, refused alone (106)", () => {
    expect(select(pools, defaults, "core-1", { namespace: "team-b", pools: [["a-v4", "v4"], "v6"], hasRanges: false }).slots).toEqual([["v4"], ["v6"]]);
    const alone = refusal(() => select(pools, defaults, "core-1", { namespace: "team-b", pools: ["a-v4"], hasRanges: false }));
    expect(alone.code).toBe(106);
    expect(alone.message).toBe("pool a-v4 does not serve namespace team-b (namespaces team-a)");
    const group = refusal(() => select(pools, defaults, "core-1", { namespace: undefined, pools: [["a-v4", "edge-v4"]], hasRanges: false }));
    expect(group.code).toBe(106);
    expect(group.message).toContain("K8S_POD_NAMESPACE");
    expect(group.message).toContain("pool edge-v4 does not serve node core-1 (nodes edge-*, lab-?)");
    expect(refusal(() => select(pools, defaults, "core-1", { namespace: "x", pools: ["nope"], hasRanges: false })).code).toBe(7);
  });

  test("config checks: default groups name defined pools of one family", () => {
    expect(() => choiceGroups([["v4", "v6"]], pools, "defaultPools")).toThrow("mixes IPv4 and IPv6");
    expect(() => choiceGroups(["v5"], pools, "defaultPools")).toThrow('defaultPools: unknown pool "v5"');
  });
});
