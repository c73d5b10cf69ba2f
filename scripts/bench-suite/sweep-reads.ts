/**
 * One node's periodic work on the cluster store, in keys etcd answers (the reliability
 * issue): the leak sweep's read, its CNI GC list and its history prune, for node-0 of a store
 * that holds the allocations of 1, 10 and 100 simulated nodes (50 pods each). A layout whose
 * per-node questions read the whole cluster grows with the node count; the target is flat.
 */
import type { EtcdClient } from "../../src/store/etcd-client.ts";
import { EtcdStore } from "../../src/store/etcd.ts";
import type { AllocationRecord } from "../../src/store/store.ts";

const PER_NODE = 50;

function record(n: number, i: number): AllocationRecord {
  const k = n * PER_NODE + i;
  const ip = `10.${100 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
  return { space: "sweepnet", network: "sweepnet", ip, family: 4, prefix: 16, gateway: null, pool: null, rangeSet: "10.100.0.0/14", containerID: `n${n}-c${i}`, ifname: "eth0", netns: `/var/run/netns/n${n}-c${i}`, podNamespace: `ns-${n}`, podName: `pod-${i}`, podUid: null, node: `node-${n}`, createdAt: Date.now(), static: false };
}

/** Keys read by node-0's sweep with `nodes` nodes' allocations in the store. */
async function keysPerSweep(client: EtcdClient, nodes: number, prefix: string): Promise<number> {
  const store = new EtcdStore(client, prefix, "node-0");
  const records = Array.from({ length: nodes * PER_NODE }, (_, k) => record(Math.floor(k / PER_NODE), k % PER_NODE));
  const commits: Promise<void>[] = [];
  for (let i = 0; i < records.length; i += store.commitCapacity) commits.push(store.commit(records.slice(i, i + store.commitCapacity).map((r) => ({ op: "allocate" as const, record: r }))));
  await Promise.all(commits);
  const before = client.keysRead;
  const netns = await store.netnsAllocations("node-0");
  const gc = await store.attachments("sweepnet", "node-0");
  await store.pruneHistory(Date.now() - 30 * 86_400_000);
  if (netns.length !== PER_NODE || gc.length !== PER_NODE) throw new Error(`node-0's sweep read ${netns.length} allocations and ${gc.length} attachments, not ${PER_NODE}`);
  return client.keysRead - before;
}

export async function sweepReads(client: EtcdClient, prefix: string): Promise<{ keys: number[]; pass: boolean; row: string }> {
  const keys: number[] = [];
  for (const nodes of [1, 10, 100]) keys.push(await keysPerSweep(client, nodes, `${prefix}sweep-${nodes}/`));
  const pass = Math.max(...keys) <= 1.1 * Math.min(...keys);
  return { keys, pass, row: `1 / 10 / 100 nodes: ${keys.join(" / ")} keys (${PER_NODE} pods on this node)` };
}
