/**
 * One node's periodic work on the cluster store, in keys etcd answers (the reliability
 * issue): the leak sweep's read, its CNI GC list and its history prune, for node-0 of a store
 * that holds the allocations of 1, 10 and 100 simulated nodes (50 pods each). A layout whose
 * per-node questions read the whole cluster grows with the node count; the target is flat.
 * On the blocks a new prefix holds, the sweep asks the daemon's watch-fed copy of the blocks,
 * not etcd; what grows with the cluster instead is the list of every block a daemon reads when
 * it starts (and the watch's changes of every block after it), also reported.
 */
import { join } from "node:path";
import type { EtcdClient } from "../../src/store/etcd-client.ts";
import { ETCD_NAMESPACE, EtcdObjects } from "../../src/store/etcd-objects.ts";
import { KubeStore } from "../../src/store/kube.ts";
import type { AllocationRecord } from "../../src/store/store.ts";
import { tempDir } from "../../test/e2e/harness.ts";

const PER_NODE = 50;

function record(n: number, i: number): AllocationRecord {
  const k = n * PER_NODE + i;
  const ip = `10.${100 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
  return { space: "sweepnet", network: "sweepnet", ip, family: 4, prefix: 16, gateway: null, pool: null, rangeSet: "10.100.0.0/14", containerID: `n${n}-c${i}`, ifname: "eth0", netns: `/var/run/netns/n${n}-c${i}`, podNamespace: `ns-${n}`, podName: `pod-${i}`, podUid: null, node: `node-${n}`, createdAt: Date.now(), static: false };
}

const open = (client: EtcdClient, prefix: string, node: string) =>
  KubeStore.open({ client: new EtcdObjects(client, prefix, "etcd"), namespace: ETCD_NAMESPACE, node, db: join(tempDir("ipamd-sweep-"), "local.db"), blockPrefixes: { v4: 26, v6: 122 } });

/** Keys read by node-0's sweep, and by its start, with `nodes` nodes' allocations in the store. */
async function keysPerSweep(client: EtcdClient, nodes: number, prefix: string): Promise<{ sweep: number; start: number }> {
  const writer = await open(client, prefix, "writer");
  const records = Array.from({ length: nodes * PER_NODE }, (_, k) => record(Math.floor(k / PER_NODE), k % PER_NODE));
  const commits: Promise<void>[] = [];
  for (let i = 0; i < records.length; i += writer.commitCapacity) commits.push(writer.commit(records.slice(i, i + writer.commitCapacity).map((r) => ({ op: "allocate" as const, record: r }))));
  await Promise.all(commits);
  await writer.close();
  const beforeStart = client.keysRead;
  const store = await open(client, prefix, "node-0");
  const start = client.keysRead - beforeStart;
  try {
    const before = client.keysRead;
    const netns = await store.netnsAllocations("node-0");
    const gc = await store.attachments("sweepnet", "node-0");
    await store.pruneHistory(Date.now() - 30 * 86_400_000);
    if (netns.length !== PER_NODE || gc.length !== PER_NODE) throw new Error(`node-0's sweep read ${netns.length} allocations and ${gc.length} attachments, not ${PER_NODE}`);
    return { sweep: client.keysRead - before, start };
  } finally {
    await store.close();
  }
}

export async function sweepReads(client: EtcdClient, prefix: string): Promise<{ keys: number[]; pass: boolean; row: string }> {
  const figures: { sweep: number; start: number }[] = [];
  for (const nodes of [1, 10, 100]) figures.push(await keysPerSweep(client, nodes, `${prefix}sweep-${nodes}/`));
  const keys = figures.map((f) => f.sweep);
  const pass = Math.max(...keys) <= 1.1 * Math.min(...keys);
  return { keys, pass, row: `1 / 10 / 100 nodes: sweep ${keys.join(" / ")} keys; start ${figures.map((f) => f.start).join(" / ")} keys (${PER_NODE} pods on this node)` };
}
