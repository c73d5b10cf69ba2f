/**
 * The cluster-store benchmark (issue 7): three daemons sharing a real 3-member etcd cluster
 * (Debian's etcd-server on loopback, TLS with client certificates, as in production), each
 * driven by 64 concurrent clients through its socket API.
 *
 *   make bench-cluster              (BENCH_CLUSTER_SECONDS=10 by default)
 *
 * Figures, each with its target (a miss prints MISSED with the number):
 * - aggregate durable allocations/s (ADDs answered, each committed to etcd quorum first),
 *   target ≥ 5,000/s, and duplicates found by a full scan of etcd afterwards, target 0;
 * - raw etcd transaction throughput measured in the same run (192 clients doing one
 *   compare-and-create txn each, straight at the gateway): the reference, what one CAS per
 *   allocation would reach here, and ipamd's rate as a share of it (batching several
 *   allocations into one transaction lets ipamd go past 100%);
 * - plugin ADD p50 (dist/ipamd exec) against an etcd daemon vs an embedded-store daemon,
 *   interleaved, target ≤ 1.5× the embedded figure.
 * Everything it starts (etcd members, daemons, temp dirs) is removed at the end, even on failure.
 */
import { join } from "node:path";
import { attachmentEnv, cleanup, type Daemon, netconf, runPlugin, startDaemon, tempDir } from "../test/e2e/harness.ts";
import { EtcdClient } from "../src/store/etcd-client.ts";
import { startEtcd } from "../test/store/etcd-cluster.ts";

const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 10);
const CLIENTS = 64;
const PLUGIN_SAMPLES = Number(process.env.BENCH_CLUSTER_PLUGIN_SAMPLES ?? 100);
const SUBNET = "10.128.0.0/14";

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN;

async function main(): Promise<number> {
  const etcd = await startEtcd({ members: 3, tls: true });
  const c = etcd.certs!;
  const tls = { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() };
  const prefix = `/bench-${process.pid}/`;
  const daemons: Daemon[] = await Promise.all(
    ["node-a", "node-b", "node-c"].map((node) =>
      startDaemon({ args: ["--node", node, "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-cacert", c.ca, "--etcd-cert", c.clientCert, "--etcd-key", c.clientKey, "--etcd-prefix", prefix] }),
    ),
  );

  // 1. Aggregate durable allocations/s: 3 daemons × 64 clients doing ADDs for SECONDS.
  const answered: string[] = [];
  const latencies: number[] = [];
  let failures = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    daemons.flatMap((d, di) =>
      Array.from({ length: CLIENTS }, async (_, ci) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const t = performance.now();
          const res = await fetch("http://ipamd/v1/cni/add", {
            unix: d.socket,
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ network: "bench", containerID: `d${di}-c${ci}-${i}`, ifname: "eth0", ranges: [[{ subnet: SUBNET }]] }),
          });
          const body = (await res.json()) as { ips?: { address: string }[] };
          if (res.ok && body.ips) {
            answered.push(body.ips[0]!.address);
            latencies.push(performance.now() - t);
          } else failures++;
        }
      }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  const rate = answered.length / elapsed;
  const client = new EtcdClient(etcd.endpoints, tls, 10_000);
  const stored = (await client.rangePrefix(`${prefix}a/`, { keysOnly: true })).map((kv) => kv.key.slice(kv.key.lastIndexOf("/") + 1));
  const duplicates = answered.length - new Set(answered).size + (stored.length - new Set(stored).size);
  const missing = answered.filter((ip) => !new Set(stored).has(ip)).length;

  // 2. Raw etcd txn throughput, same cluster, same run: 192 clients, one CAS create per txn.
  const rawClients = Array.from({ length: 3 }, () => new EtcdClient(etcd.endpoints, tls, 10_000));
  let raw = 0;
  const rawDeadline = performance.now() + Math.min(SECONDS, 5) * 1000;
  const rawStarted = performance.now();
  await Promise.all(
    Array.from({ length: 3 * CLIENTS }, async (_, ci) => {
      for (let i = 0; performance.now() < rawDeadline; i++) {
        const key = `/raw-${process.pid}/${ci}/${i}`;
        const r = await rawClients[ci % 3]!.txn([{ key, target: "CREATE", result: "EQUAL", create_revision: 0 }], [{ put: { key, value: "x" } }]);
        if (r.succeeded) raw++;
      }
    }),
  );
  const rawRate = raw / ((performance.now() - rawStarted) / 1000);

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

  const row = (name: string, value: string, target: string, pass: boolean) => `| ${name} | ${value} | ${target} | ${pass ? "pass" : "MISSED"} |`;
  console.log(
    [
      "",
      `3 daemons × ${CLIENTS} clients for ${SECONDS} s on a 3-member TLS etcd cluster (loopback, ${navigator.hardwareConcurrency} cpus); bun ${Bun.version}`,
      "",
      "| figure | measured | target | result |",
      "|---|---:|---|---|",
      row("durable allocations/s (aggregate)", `${rate.toFixed(0)}/s (p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms, ${failures} failed)`, "≥ 5,000/s", rate >= 5000),
      row("duplicates (full etcd scan)", `${duplicates} (${answered.length} answered, ${stored.length} in etcd, ${missing} answered but missing)`, "0", duplicates === 0 && missing === 0),
      row("raw etcd CAS txns/s (same run)", `${rawRate.toFixed(0)}/s; ipamd reaches ${((rate / rawRate) * 100).toFixed(0)}%`, "(reference: one CAS per allocation)", true),
      row("plugin ADD p50, etcd vs embedded", `${p(onEtcd, 0.5).toFixed(2)} vs ${p(onSqlite, 0.5).toFixed(2)} ms (${pluginRatio.toFixed(2)}×)`, "≤ 1.5×", pluginRatio <= 1.5),
    ].join("\n"),
  );
  return rate >= 5000 && duplicates === 0 && missing === 0 && pluginRatio <= 1.5 ? 0 : 1;
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
