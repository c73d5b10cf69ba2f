/**
 * What one write of a block costs the API server as the block fills: replacing an IPAMBlock
 * holding n allocations (one of them changed each time, as an ADD does) with its
 * resourceVersion, p50 of `samples` writes per size, the sizes interleaved. A plugin ADD on the
 * Kubernetes-API store waits for exactly one such write; the API server decodes, validates
 * against the CRD's schema and stores the whole object each time, so the cost grows with n.
 */
import type { KubeClient } from "../../src/kube/client.ts";
import { IPAMBlocks } from "../../src/kube/resources.ts";
import { blockSpecWire, type IPAMBlock, type StoredAllocation } from "../../src/kube/schemas/store.ts";
import { p } from "./cluster-load.ts";

const allocation = (i: number): StoredAllocation => ({
  network: "bench", containerID: `c${i}`, ifname: "eth0", node: "node-a", createdAt: Date.now(), prefix: 16,
  gateway: "10.200.0.1", rangeSet: "10.200.0.0/16[10.200.0.1-10.200.255.254 gw 10.200.0.1]",
});

export async function blockWriteCost(client: KubeClient, namespace: string, sizes: number[], samples: number): Promise<Map<number, number>> {
  const blocks = new Map<number, IPAMBlock>();
  const times = new Map<number, number[]>(sizes.map((n) => [n, []]));
  const spec = (n: number, round: number) =>
    blockSpecWire({
      space: "bench", cidr: `10.201.${n}.0/24`, node: "node-a",
      allocations: Object.fromEntries(Array.from({ length: n }, (_, i) => [`10.201.${n}.${i}`, allocation(i === 0 ? round : i)])),
    });
  // managedFields: [{}] as the store writes them (no field ownership kept).
  for (const n of sizes) blocks.set(n, await client.create(IPAMBlocks, { metadata: { name: `write-cost-${n}`, namespace, managedFields: [{}] } as never, spec: spec(n, 0) }));
  for (let round = 1; round <= samples; round++) {
    for (const n of sizes) {
      const base = blocks.get(n)!;
      const t = performance.now();
      blocks.set(n, await client.update(IPAMBlocks, { ...base, metadata: { ...base.metadata, managedFields: [{}] } as never, spec: spec(n, round) }));
      times.get(n)!.push(performance.now() - t);
    }
  }
  return new Map(sizes.map((n) => [n, p(times.get(n)!, 0.5)]));
}
