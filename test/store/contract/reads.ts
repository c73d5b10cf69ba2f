/** The Store contract: the reads of the leak sweep and of operators — each field a filter, a page at a time. */
import { expect, test } from "bun:test";
import type { AllocationRecord } from "../../../src/store/store.ts";
import { allPages, type ContractTarget, record } from "./support.ts";

export function readContract(target: ContractTarget): void {
  test("the leak sweep's read: one node's allocations that name a netns, and only those", async () => {
    const store = await target.open();
    await store.commit([
      { op: "allocate", record: record("10.0.0.2", "c1") },
      { op: "allocate", record: record("fd00::2", "c1") },
      { op: "allocate", record: record("10.0.0.3", "c2", { netns: null }) },
      { op: "allocate", record: record("10.0.0.4", "c3", { netns: "" }) },
      { op: "allocate", record: record("10.0.0.5", "c4", { node: "node-b" }) },
    ]);
    const mine = await store.netnsAllocations("node-a");
    expect(mine.map((r) => `${r.ip} ${r.netns}`).sort()).toEqual(["10.0.0.2 /var/run/netns/c1", "fd00::2 /var/run/netns/c1"]);
    expect((await store.netnsAllocations("node-b")).map((r) => r.ip)).toEqual(["10.0.0.5"]);
    expect(await store.netnsAllocations("node-c")).toEqual([]);
    await store.close();
  }, 30_000);

  test("admin reads: holders across spaces, allocations by each field, pages in address order", async () => {
    const store = await target.open();
    const records = [
      record("10.0.0.10", "c1", { node: "node-b", podNamespace: "prod", podName: "api-0" }),
      record("10.0.0.9", "c2"),
      record("fd00::2", "c1", { node: "node-b", podNamespace: "prod", podName: "api-0" }),
      record("10.0.0.2", "c3", { podName: "web-0" }),
      { ...record("10.0.0.2", "c4", { node: "node-b", podName: "db-0" }), space: "@ipv4", network: "other", pool: "v4", rangeSet: null },
      record("10.0.1.1", "c5", { ifname: "net1" }),
    ];
    await store.commit(records.map((r) => ({ op: "allocate" as const, record: r })));
    const ips = (rs: AllocationRecord[]) => rs.map((r) => `${r.space} ${r.ip}`);
    expect(ips(await store.holders("10.0.0.2")).sort()).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2"]);
    expect(await store.holders("10.9.9.9")).toEqual([]);
    // Address order: by space, then IPv4 before IPv6, then numerically (10.0.0.9 before 10.0.0.10).
    const everything = ["@ipv4 10.0.0.2", "net1 10.0.0.2", "net1 10.0.0.9", "net1 10.0.0.10", "net1 10.0.1.1", "net1 fd00::2"];
    expect(ips(await store.allocations({}))).toEqual(everything);
    expect((await allPages(store, {}, 4)).map(ips)).toEqual([everything.slice(0, 4), everything.slice(4)]);
    expect((await allPages(store, {}, 1)).flatMap(ips)).toEqual(everything);
    expect(ips(await store.allocations({ node: "node-b" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.10", "net1 fd00::2"]);
    expect((await allPages(store, { node: "node-b" }, 2)).map(ips)).toEqual([["@ipv4 10.0.0.2", "net1 10.0.0.10"], ["net1 fd00::2"]]);
    expect(ips(await store.allocations({ podNamespace: "prod", podName: "api-0" }))).toEqual(["net1 10.0.0.10", "net1 fd00::2"]);
    expect(ips(await store.allocations({ podNamespace: "default" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2", "net1 10.0.0.9", "net1 10.0.1.1"]);
    expect(ips(await store.allocations({ containerID: "c1" }))).toEqual(["net1 10.0.0.10", "net1 fd00::2"]);
    expect(ips(await store.allocations({ ip: "10.0.0.2" }))).toEqual(["@ipv4 10.0.0.2", "net1 10.0.0.2"]);
    expect(ips(await store.allocations({ pool: "v4" }))).toEqual(["@ipv4 10.0.0.2"]);
    expect(ips(await store.allocations({ network: "other" }))).toEqual(["@ipv4 10.0.0.2"]);
    expect(ips(await store.allocations({ search: "web" }))).toEqual(["net1 10.0.0.2"]);
    expect(ips(await store.allocations({ node: "node-b", containerID: "c1", limit: 1 }))).toEqual(["net1 10.0.0.10"]);
    await store.close();
  }, 30_000);

  test("a namespace's allocations include those whose pod has no name (CNI_ARGS gave only a namespace), until released", async () => {
    const store = await target.open();
    const unnamed = record("10.0.0.7", "c6", { podNamespace: "batch", podName: null });
    await store.commit([
      { op: "allocate", record: unnamed },
      { op: "allocate", record: record("10.0.0.8", "c7", { podNamespace: "batch", podName: "job-0" }) },
    ]);
    const ips = (rs: AllocationRecord[]) => rs.map((r) => r.ip);
    expect(ips(await store.allocations({ podNamespace: "batch" }))).toEqual(["10.0.0.7", "10.0.0.8"]);
    expect(ips(await store.allocations({ podNamespace: "batch", podName: "job-0" }))).toEqual(["10.0.0.8"]);
    await store.commit([{ op: "release", record: unnamed, cause: "cni del" }]);
    expect(ips(await store.allocations({ podNamespace: "batch" }))).toEqual(["10.0.0.8"]);
    await store.close();
  }, 30_000);
}
