/**
 * The cluster-store benchmark (issue 7): three daemons sharing a real 3-member etcd cluster
 * (Debian's etcd-server on loopback, TLS with client certificates, as in production), each
 * driven by 64 concurrent clients through its socket API.
 *
 *   make bench-cluster              (BENCH_CLUSTER_SECONDS=10 by default)
 *
 * Figures, each with its target (a miss prints MISSED with the number):
 * - aggregate durable allocations/s (ADDs answered, each committed to etcd quorum first),
 *   target ≥ 5,000/s with no ADD failed (failures are printed by reason); and duplicates
 *   found by a full scan of etcd afterwards, target 0;
 * - raw etcd transaction throughput measured in the same run (192 clients doing one
 *   compare-and-create txn each, straight at the gateway): what one CAS per allocation
 *   reaches here. Target: ipamd's rate ≥ 1.0× it (batching several allocations into one
 *   transaction is why ipamd exists on etcd), and every raw txn committed (a reference
 *   that failed is no reference);
 * - plugin ADD p50 (dist/ipamd exec) against an etcd daemon vs an embedded-store daemon,
 *   interleaved, target ≤ 1.5× the embedded figure;
 * - keys etcd answers for one node's periodic work (sweep-reads.ts) with 1, 10 and 100
 *   nodes' allocations in the store: flat.
 * Everything it starts (etcd members, daemons, temp dirs) is removed at the end, even on failure.
 */
import { join } from "node:path";
import { attachmentEnv, cleanup, type Daemon, netconf, runPlugin, startDaemon, tempDir } from "../test/e2e/harness.ts";
import { EtcdClient } from "../src/store/etcd-client.ts";
import { type EtcdCluster, startEtcd } from "../test/store/etcd-cluster.ts";
import { BASELINE_REF, buildBaseline } from "./bench-suite/baseline-build.ts";
import { addressOf } from "../src/store/etcd/layout.ts";
import { sweepReads } from "./bench-suite/sweep-reads.ts";

const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 10);
const CLIENTS = 64;
const PLUGIN_SAMPLES = Number(process.env.BENCH_CLUSTER_PLUGIN_SAMPLES ?? 100);
const SUBNET = "10.128.0.0/14";

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN;

/** 3 daemons × CLIENTS clients doing ADDs for `seconds`: durable allocations/s, every answer and failure. */
async function durableLoad(daemons: Daemon[], seconds: number) {
  const answered: string[] = [];
  const latencies: number[] = [];
  /** Every ADD not answered with an address, by why: any one misses the target. */
  const failures = new Map<string, number>();
  const failed = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    daemons.flatMap((d, di) =>
      Array.from({ length: CLIENTS }, async (_, ci) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const t = performance.now();
          try {
            const res = await fetch("http://ipamd/v1/cni/add", {
              unix: d.socket,
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ network: "bench", containerID: `d${di}-c${ci}-${i}`, ifname: "eth0", ranges: [[{ subnet: SUBNET }]] }),
            });
            const body = (await res.json()) as { ips?: { address: string }[]; code?: number };
            if (res.ok && body.ips?.length) {
              answered.push(body.ips[0]!.address);
              latencies.push(performance.now() - t);
            } else failed(`HTTP ${res.status} code ${body.code ?? "none"}`);
          } catch (err) {
            failed((err as Error).message.split(":")[0]!);
          }
        }
      }),
    ),
  );
  return { rate: answered.length / ((performance.now() - started) / 1000), answered, latencies, failures };
}

/** Three daemons of one binary on the cluster, under one prefix. */
function clusterDaemons(etcd: EtcdCluster, prefix: string, binary?: string): Promise<Daemon[]> {
  const c = etcd.certs!;
  return Promise.all(
    ["node-a", "node-b", "node-c"].map((node) =>
      startDaemon({ ...(binary ? { binary } : {}), args: ["--node", node, "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-cacert", c.ca, "--etcd-cert", c.clientCert, "--etcd-key", c.clientKey, "--etcd-prefix", prefix] }),
    ),
  );
}

async function main(): Promise<number> {
  const etcd = await startEtcd({ members: 3, tls: true });
  const c = etcd.certs!;
  const tls = { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() };
  const prefix = `/bench-${process.pid}/`;
  const daemons = await clusterDaemons(etcd, prefix);

  // 1. Aggregate durable allocations/s: 3 daemons × 64 clients doing ADDs for SECONDS.
  const { rate, answered, latencies, failures } = await durableLoad(daemons, SECONDS);
  const client = new EtcdClient(etcd.endpoints, tls, 10_000);
  // a/SPACE/ADDR keys: the address in hex of its address-order key (src/store/etcd/layout.ts).
  const stored = (await client.rangePrefix(`${prefix}a/`, { keysOnly: true })).map((kv) => addressOf(kv.key.slice(kv.key.lastIndexOf("/") + 1)).ip);
  const duplicates = answered.length - new Set(answered).size + (stored.length - new Set(stored).size);
  const missing = answered.filter((ip) => !new Set(stored).has(ip)).length;

  // 2. Raw etcd txn throughput, same cluster, same run: 192 clients, one CAS create per txn.
  const rawClients = Array.from({ length: 3 }, () => new EtcdClient(etcd.endpoints, tls, 10_000));
  let raw = 0;
  let rawFailed = 0; // each key is new: a txn that did not commit means the reference is wrong
  const rawDeadline = performance.now() + Math.min(SECONDS, 5) * 1000;
  const rawStarted = performance.now();
  await Promise.all(
    Array.from({ length: 3 * CLIENTS }, async (_, ci) => {
      for (let i = 0; performance.now() < rawDeadline; i++) {
        const key = `/raw-${process.pid}/${ci}/${i}`;
        const r = await rawClients[ci % 3]!.txn([{ key, target: "CREATE", result: "EQUAL", create_revision: 0 }], [{ put: { key, value: "x" } }]).catch(() => null);
        if (r?.succeeded) raw++;
        else rawFailed++;
      }
    }),
  );
  const rawRate = raw / ((performance.now() - rawStarted) / 1000);
  console.error(`ipamd ${rate.toFixed(0)} durable allocations/s; raw etcd ${rawRate.toFixed(0)} CAS txns/s`);

  // 3. Plugin ADD p50: etcd daemon vs embedded-store daemon, interleaved.
  const embedded = await startDaemon({ dir: tempDir("ipamd-bench-embedded-") });
  const onEtcd: number[] = [];
  const onSqlite: number[] = [];
  for (let i = 0; i < PLUGIN_SAMPLES; i++) {
    for (const [d, out] of [[daemons[0]!, onEtcd], [embedded, onSqlite]] as const) {
      const t = performance.now();
      const run = await runPlugin(attachmentEnv("ADD", `plugin-${i}`), netconf(d.socket, { ranges: [[{ subnet: "10.200.0.0/16" }]] }));
      if (run.exitCode !== 0) throw new Error(`plugin ADD failed: ${run.stdout}`);
      out.push(performance.now() - t);
    }
  }
  const pluginRatio = p(onEtcd, 0.5) / p(onSqlite, 0.5);

  // 4. The previous main (see bench-suite/baseline.ts), same cluster, same load, its own prefix.
  const baselineBinary = join(tempDir("ipamd-bench-baseline-"), "ipamd");
  await buildBaseline(baselineBinary);
  for (const d of daemons) await d.stop();
  const before = await durableLoad(await clusterDaemons(etcd, `/bench-baseline-${process.pid}/`, baselineBinary), SECONDS);

  // 5. One node's sweep, in keys read, as the cluster grows.
  const sweep = await sweepReads(new EtcdClient(etcd.endpoints, tls, 10_000), prefix);

  const row = (name: string, value: string, target: string, pass: boolean) => `| ${name} | ${value} | ${target} | ${pass ? "pass" : "MISSED"} |`;
  const failedCount = [...failures.values()].reduce((a, b) => a + b, 0);
  const why = failedCount ? `: ${[...failures].map(([k, v]) => `${v}× ${k}`).join(", ")}` : "";
  const verdicts = {
    rate: rate >= 5000 && failedCount === 0,
    duplicates: duplicates === 0 && missing === 0,
    raw: rawFailed === 0 && rate >= rawRate,
    plugin: pluginRatio <= 1.5,
    sweep: sweep.pass,
    baseline: false,
  };
  const beforeFailed = [...before.failures.values()].reduce((a, b) => a + b, 0);
  verdicts.baseline = rate >= 0.95 * before.rate;
  console.log(
    [
      "",
      `3 daemons × ${CLIENTS} clients for ${SECONDS} s on a 3-member TLS etcd cluster (loopback, ${navigator.hardwareConcurrency} cpus); bun ${Bun.version}`,
      "",
      "| figure | measured | target | result |",
      "|---|---:|---|---|",
      row("durable allocations/s (aggregate)", `${rate.toFixed(0)}/s (p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms, ${failedCount} failed${why})`, "≥ 5,000/s, none failed", verdicts.rate),
      row("duplicates (full etcd scan)", `${duplicates} (${answered.length} answered, ${stored.length} in etcd, ${missing} answered but missing)`, "0", verdicts.duplicates),
      row("ipamd against raw etcd CAS txns/s (same run)", `raw ${rawRate.toFixed(0)}/s (${rawFailed} failed); ipamd reaches ${(rate / rawRate).toFixed(2)}×`, "ipamd ≥ 1.0× raw, no raw txn failed", verdicts.raw),
      row("plugin ADD p50, etcd vs embedded", `${p(onEtcd, 0.5).toFixed(2)} vs ${p(onSqlite, 0.5).toFixed(2)} ms (${pluginRatio.toFixed(2)}×)`, "≤ 1.5×", verdicts.plugin),
      row(`durable allocations/s against the previous main (${BASELINE_REF}), same cluster and load`, `${rate.toFixed(0)} vs ${before.rate.toFixed(0)}/s (${(rate / before.rate).toFixed(2)}×; ${beforeFailed} of its ADDs failed)`, "≥ 0.95× previous", verdicts.baseline),
      row("etcd keys read per node sweep (netns read, GC list, prune)", sweep.row, "flat: largest ≤ 1.1× smallest", verdicts.sweep),
    ].join("\n"),
  );
  return Object.values(verdicts).every(Boolean) ? 0 : 1;
}

let code = 2;
try {
  code = await main();
} catch (err) {
  console.error(`bench-cluster failed: ${(err as Error).message}`);
} finally {
  await cleanup();
}
process.exit(code);
