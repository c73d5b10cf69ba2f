/**
 * Holds (an address cooling down after release) are holds on every store: after a restart
 * STATUS, `ipamd pools` and the metrics count allocations only, the same on the embedded store
 * and on a real etcd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";
import { attachmentEnv, BINARY, cleanup, type Daemon, netconf, runPlugin, startDaemon, tempDir } from "./harness.ts";
import { run } from "./netns.ts";

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(cleanup);

const stores: Record<string, () => string[]> = {
  sqlite: () => [],
  etcd: () => ["--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", `/holds-${process.pid}/`],
};

async function figures(daemon: Daemon) {
  const status = (await (await fetch("http://ipamd/v1/status", { unix: daemon.socket })).json()) as { allocations: number };
  const pools = JSON.parse((await run([BINARY, "pools", "--json", "--socket", daemon.socket])).stdout).pools as { name: string; used: number; cooling: number }[];
  const metrics = await (await fetch("http://ipamd/metrics", { unix: daemon.socket })).text();
  const used = /^ipamd_pool_allocated_addresses\{pool="cool",kind="named"\} (\d+)$/m.exec(metrics)?.[1];
  const pool = pools.find((p) => p.name === "cool")!;
  return { status: status.allocations, used: pool.used, cooling: pool.cooling, metric: Number(used) };
}

describe("holds after a restart", () => {
  for (const [kind, args] of Object.entries(stores)) {
    test(`${kind}: an address cooling down after ADD and DEL counts as a hold, not an allocation`, async () => {
      const dir = tempDir();
      const config = join(dir, "config.json");
      writeFileSync(config, JSON.stringify({ reclaimInterval: 0, pools: { cool: { addresses: ["10.66.0.0/24"], prefix: 24, releaseCooldown: 3600 } } }));
      const start = () => startDaemon({ dir, args: ["--config", config, "--node", "node-a", ...args()] });
      const first = await start();
      const conf = netconf(first.socket, { ranges: undefined, pool: "cool" });
      const added = await runPlugin(attachmentEnv("ADD", "c1"), conf);
      expect(added.exitCode).toBe(0);
      expect((await runPlugin(attachmentEnv("DEL", "c1"), conf)).exitCode).toBe(0);
      expect(await figures(first)).toEqual({ status: 0, used: 0, cooling: 1, metric: 0 });
      expect(await first.stop()).toBe(0);
      const again = await start();
      expect(await figures(again)).toEqual({ status: 0, used: 0, cooling: 1, metric: 0 });
      // Still held: the next ADD gets another address.
      const next = await runPlugin(attachmentEnv("ADD", "c2"), conf);
      expect(next.json.ips[0].address).not.toBe(added.json.ips[0].address);
    }, 30_000);
  }
});
