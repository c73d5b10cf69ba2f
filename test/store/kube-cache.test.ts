/**
 * The Kubernetes-API store's block cache on its own (no API server): which watch events of
 * another node's blocks may wait unread, and the bound on what waits. The reads that make a
 * waiting block be read are proven on the API server, in kube.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { safeParse } from "valibot";
import { blockSpecWire, type IPAMBlock, IPAMBlockSchema, type StoredAllocation } from "../../src/kube/schemas/store.ts";
import { BlockCache } from "../../src/store/kube/cache.ts";

const allocation = (containerID: string, node: string): StoredAllocation => ({ network: "net1", containerID, ifname: "eth0", node, createdAt: 1, prefix: 24 });

/** A block as a watch event sends it: its spec as written, unchecked. */
function wire(name: string, version: number, node: string, ips: string[], more: Record<string, unknown> = {}) {
  const cidr = `${name}/26`;
  const allocations = Object.fromEntries(ips.map((ip) => [ip, allocation(`c-${ip}`, node)]));
  return { apiVersion: "ipamd.io/v1alpha1", kind: "IPAMBlock", metadata: { name, namespace: "s", resourceVersion: String(version) }, spec: { ...blockSpecWire({ space: "net1", cidr, node, allocations }), ...more } };
}

const parsed = (object: unknown): IPAMBlock => {
  const result = safeParse(IPAMBlockSchema, object);
  if (!result.success) throw new Error(result.issues[0].message);
  return result.output;
};

function cache(waitingTextLimit?: number): BlockCache {
  const c = new BlockCache(() => "unknown", { node: "node-a", waitingTextLimit });
  c.put(parsed(wire("10.0.0.0", 1, "node-b", ["10.0.0.2"])));
  c.put(parsed(wire("10.0.1.0", 2, "node-b", ["10.0.1.2"])));
  c.put(parsed(wire("10.0.2.0", 3, "node-a", ["10.0.2.2"])));
  c.put(parsed(wire("10.0.3.0", 4, "", ["10.0.3.2"])));
  return c;
}

describe("Kubernetes-API store: block cache", () => {
  test("only another node's block whose lines alone changed waits; newer versions replace it, older ones are passed by", () => {
    const c = cache();
    expect(c.take("10.0.2.0", "10", wire("10.0.2.0", 10, "node-a", ["10.0.2.2", "10.0.2.3"]))).toBe(false); // this node's
    expect(c.take("10.0.3.0", "10", wire("10.0.3.0", 10, "", ["10.0.3.2", "10.0.3.3"]))).toBe(false); // nobody's: anyone writes it
    expect(c.take("10.0.9.0", "10", wire("10.0.9.0", 10, "node-b", ["10.0.9.2"]))).toBe(false); // not read before
    expect(c.take("10.0.0.0", "1", wire("10.0.0.0", 1, "node-b", ["10.0.0.2"]))).toBe(false); // the version read
    const hold = { "10.0.0.9": { kind: "reserved" } };
    expect(c.take("10.0.0.0", "10", wire("10.0.0.0", 10, "node-b", ["10.0.0.2"], { holds: hold }))).toBe(false);
    expect(c.take("10.0.0.0", "10", wire("10.0.0.0", 10, "node-c", ["10.0.0.2"]))).toBe(false); // claimed anew
    expect(c.take("10.0.0.0", "10", wire("10.0.0.0", 10, "node-b", ["10.0.0.2"], { labels: "x" }))).toBe(false); // a field ipamd does not write
    const escaped = wire("10.0.0.0", 10, "node-b", ["10.0.0.2"]);
    escaped.spec.allocations = escaped.spec.allocations!.replace("c-10.0.0.2", "c-10.0.0.%32"); // the same value, escaped by another writer
    expect(c.take("10.0.0.0", "10", escaped)).toBe(false); // a search would miss it: read at once
    expect(c.waitingBlocks).toBe(0);
    expect(c.take("10.0.0.0", "10", wire("10.0.0.0", 10, "node-b", ["10.0.0.2", "10.0.0.3"]))).toBe(true);
    expect(c.take("10.0.0.0", "9", wire("10.0.0.0", 9, "node-b", []))).toBe(true); // older than what waits: nothing to keep
    expect(c.take("10.0.0.0", "11", wire("10.0.0.0", 11, "node-b", ["10.0.0.3"]))).toBe(true);
    expect(c.waitingBlocks).toBe(1);
    expect(c.at("10.0.0.0", "1")).toBeDefined(); // still the version read
    expect(c.block("10.0.0.0")?.object.metadata.resourceVersion).toBe("11");
    expect([...c.block("10.0.0.0")!.view.allocations.keys()]).toEqual(["10.0.0.3"]);
    expect(c.waitingBlocks).toBe(0);
  });

  test("a newer version put (an answer, a fresh read) replaces what waits; a deletion drops the block and what waits of it", () => {
    const c = cache();
    c.take("10.0.0.0", "10", wire("10.0.0.0", 10, "node-b", ["10.0.0.2", "10.0.0.3"]));
    c.put(parsed(wire("10.0.0.0", 12, "node-b", ["10.0.0.4"])));
    expect(c.waitingBlocks).toBe(0);
    expect([...c.block("10.0.0.0")!.view.allocations.keys()]).toEqual(["10.0.0.4"]);
    c.take("10.0.1.0", "10", wire("10.0.1.0", 10, "node-b", ["10.0.1.3"]));
    c.remove("10.0.1.0", "1"); // gone as of a version older than the one read (2): written again since
    expect(c.waitingBlocks).toBe(1);
    c.remove("10.0.1.0", "11");
    expect(c.waitingBlocks).toBe(0);
    expect(c.block("10.0.1.0")).toBeUndefined();
    // What waited, read since (by a lookup, say): a re-list's deletion, as of the list's version, still removes it.
    c.take("10.0.0.0", "13", wire("10.0.0.0", 13, "node-b", ["10.0.0.5"]));
    expect(c.ofNode("node-b").map((r) => r.ip)).toEqual(["10.0.0.5"]);
    c.remove("10.0.0.0", "20");
    expect(c.block("10.0.0.0")).toBeUndefined();
    expect(c.ofNode("node-b")).toEqual([]);
  });

  test("past the limit on waiting text, the block that has waited longest is read to make room", () => {
    const c = cache(200);
    const first = wire("10.0.0.0", 10, "node-b", ["10.0.0.2", "10.0.0.3"]);
    expect(first.spec.allocations!.length).toBeLessThan(200);
    c.take("10.0.0.0", "10", first);
    c.take("10.0.1.0", "11", wire("10.0.1.0", 11, "node-b", ["10.0.1.2", "10.0.1.3"]));
    expect(c.waitingBlocks).toBe(1);
    expect(c.at("10.0.0.0", "10")).toBeDefined(); // read, without being asked for
    expect(c.at("10.0.1.0", "2")).toBeDefined(); // still waiting
  });
});
