/**
 * The cluster-store benchmark (issue 7): three daemons sharing a real 3-member etcd cluster
 * (Debian's etcd-server on loopback, TLS with client certificates, as in production), each
 * driven by 64 concurrent clients through its socket API.
 *
 *   make bench-cluster              (BENCH_CLUSTER_SECONDS=10 by default)
 *
 * The load figures come from ROUNDS rounds; each runs, in an order that rotates, a slice of
 * ipamd's load, a slice of the same load on the previous main's binary (BENCH_BASELINE, see
 * bench-suite/baseline-build.ts; its own three daemons and prefix on the same cluster) and a
 * slice of raw etcd transactions, so the three peers share the machine's noisy minutes. Each
 * gets SECONDS in all, after an untimed warm-up slice of each (WARMUP). Figures, each with its target (a miss prints MISSED with the number):
 * - aggregate durable allocations/s (ADDs answered, each committed to etcd quorum first),
 *   target ≥ 5,000/s with no ADD failed (failures are printed by reason); and duplicates
 *   found by a full scan of etcd afterwards, target 0 (for the previous main's keys too);
 * - raw etcd transaction throughput (192 clients doing one compare-and-create txn each,
 *   straight at the gateway): what one CAS per allocation reaches here. Target (issue 15):
 *   ipamd's rate ≥ 2.0× it (batching several allocations into one transaction is why ipamd
 *   exists on etcd), and every raw txn committed (a reference that failed is no reference);
 * - ipamd's rate against the previous main's, target ≥ 0.95× (issue 13: no worse);
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
import { durableSlice, Load, p } from "./bench-suite/cluster-load.ts";
import { BLOCKS_LAYOUT } from "../src/store/etcd-layouts.ts";
import { blockAllocations, ETCD_NAMESPACE, etcdObjects } from "../test/e2e/shared-stores.ts";

const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 10);
/** Slices per peer: each load figure is the sum of this many slices of SECONDS / ROUNDS (3: each peer goes first once). */
const ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 3);
/** Seconds of the untimed slice of each peer before the rounds. */
const WARMUP = Number(process.env.BENCH_CLUSTER_WARMUP ?? 2);
const CLIENTS = 64;
const PLUGIN_SAMPLES = Number(process.env.BENCH_CLUSTER_PLUGIN_SAMPLES ?? 100);
const SUBNET = "10.128.0.0/14";

/** One slice of raw etcd: 192 clients, one compare-and-create txn on a fresh key each. */
async function rawSlice(load: Load, clients: EtcdClient[], seconds: number, slice: number): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 3 * CLIENTS }, async (_, ci) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const key = `/raw-${process.pid}/${slice}/${ci}/${i}`;
        // Each key is new: a txn that did not commit means the reference is wrong.
        const r = await clients[ci % 3]!.txn([{ key, target: "CREATE", result: "EQUAL", create_revision: 0 }], [{ put: { key, value: "x" } }]).catch((err: Error) => {
          load.failed(err.message.split(":")[0]!);
          return null;
        });
        if (r?.succeeded) load.count++;
        else if (r) load.failed("compare failed");
      }
    }),
  );
  load.seconds += (performance.now() - started) / 1000;
}

/**
 * Duplicates and answered-but-missing addresses of one prefix's loads, by a full read of what
 * it stores: its blocks (a new prefix), or its a/ keys (a prefix of the per-address layout,
 * as the previous main may write).
 */
async function scan(client: EtcdClient, prefix: string, loads: Load[]) {
  const answered = loads.flatMap((l) => l.answered);
  // a/SPACE/ADDR keys: the address in hex of its address-order key (src/store/etcd/layout.ts);
  // the previous main's layout 1 wrote it as text.
  const address = (last: string) => (/[.:]/.test(last) ? last : addressOf(last).ip);
  const blocks = (await client.range(`${prefix}layout`))[0]?.value === BLOCKS_LAYOUT;
  const stored = blocks
    ? (await blockAllocations(etcdObjects(client, prefix), ETCD_NAMESPACE)).map((r) => r.ip)
    : (await client.rangePrefix(`${prefix}a/`, { keysOnly: true })).map((kv) => address(kv.key.slice(kv.key.lastIndexOf("/") + 1)));
  const storedSet = new Set(stored);
  const duplicates = answered.length - new Set(answered).size + (stored.length - storedSet.size);
  const missing = answered.filter((ip) => !storedSet.has(ip)).length;
  return { answered: answered.length, stored: stored.length, duplicates, missing };
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
  const baselinePrefix = `/bench-baseline-${process.pid}/`;
  const baselineBinary = join(tempDir("ipamd-bench-baseline-"), "ipamd");
  await buildBaseline(baselineBinary);
  const daemons = await clusterDaemons(etcd, prefix);
  const baselineDaemons = await clusterDaemons(etcd, baselinePrefix, baselineBinary);
  const rawClients = Array.from({ length: 3 }, () => new EtcdClient(etcd.endpoints, tls, 10_000));

  // 1. ipamd, the previous main and raw etcd, interleaved: ROUNDS slices each, the order rotating.
  // First an untimed slice of each: whichever went first would otherwise pay for the cold
  // cluster and this process's cold code (the first seconds here ran at half the rate).
  let slice = 0;
  const warm = [new Load(), new Load(), new Load()] as const;
  await durableSlice(warm[0], daemons, WARMUP, CLIENTS, SUBNET, `s${slice++}`);
  await durableSlice(warm[1], baselineDaemons, WARMUP, CLIENTS, SUBNET, `s${slice++}`);
  await rawSlice(warm[2], rawClients, WARMUP, slice++);
  const ipamd = new Load();
  const before = new Load();
  const raw = new Load();
  const peers = [() => durableSlice(ipamd, daemons, SECONDS / ROUNDS, CLIENTS, SUBNET, `s${slice}`), () => durableSlice(before, baselineDaemons, SECONDS / ROUNDS, CLIENTS, SUBNET, `s${slice}`), () => rawSlice(raw, rawClients, SECONDS / ROUNDS, slice)];
  const names = ["ipamd", "previous main", "raw"];
  for (let round = 0; round < ROUNDS; round++) {
    const rates: string[] = [];
    for (let k = 0; k < peers.length; k++, slice++) {
      const peer = (round + k) % peers.length;
      const load = [ipamd, before, raw][peer]!;
      const [count, seconds] = [load.count, load.seconds];
      await peers[peer]!();
      rates.push(`${names[peer]} ${((load.count - count) / (load.seconds - seconds)).toFixed(0)}/s`);
    }
    console.error(`round ${round + 1}: ${rates.join(", ")}`);
  }
  // A request that failed in the warm-up fails its peer's verdict all the same.
  for (const [i, load] of [ipamd, before, raw].entries()) for (const [why, n] of warm[i]!.failures) load.failures.set(why, (load.failures.get(why) ?? 0) + n);
  const client = new EtcdClient(etcd.endpoints, tls, 10_000);
  const mine = await scan(client, prefix, [ipamd, warm[0]]);
  const theirs = await scan(client, baselinePrefix, [before, warm[1]]);
  console.error(`ipamd ${ipamd.rate.toFixed(0)} durable allocations/s; previous main ${before.rate.toFixed(0)}/s; raw etcd ${raw.rate.toFixed(0)} CAS txns/s`);
  for (const d of baselineDaemons) await d.stop();

  // 2. Plugin ADD p50: etcd daemon vs embedded-store daemon, interleaved.
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
  for (const d of daemons) await d.stop();

  // 3. One node's sweep, in keys read, as the cluster grows.
  const sweep = await sweepReads(new EtcdClient(etcd.endpoints, tls, 10_000), prefix);

  const row = (name: string, value: string, target: string, pass: boolean) => `| ${name} | ${value} | ${target} | ${pass ? "pass" : "MISSED"} |`;
  const verdicts = {
    rate: ipamd.rate >= 5000 && ipamd.failedCount === 0,
    duplicates: mine.duplicates === 0 && mine.missing === 0 && theirs.duplicates === 0 && theirs.missing === 0,
    raw: raw.failedCount === 0 && ipamd.rate >= 2 * raw.rate,
    baseline: before.failedCount === 0 && ipamd.rate >= 0.95 * before.rate,
    plugin: pluginRatio <= 1.5,
    sweep: sweep.pass,
  };
  const lat = (l: Load) => `p50 ${p(l.latencies, 0.5).toFixed(1)} ms, p99 ${p(l.latencies, 0.99).toFixed(1)} ms`;
  console.log(
    [
      "",
      `3 daemons × ${CLIENTS} clients on a 3-member TLS etcd cluster (loopback, ${navigator.hardwareConcurrency} cpus); bun ${Bun.version}; ` +
        `ipamd, the previous main (${BASELINE_REF}) and raw etcd interleaved in ${ROUNDS} rounds, ${SECONDS} s each in all, after ${WARMUP} s each untimed`,
      "",
      "| figure | measured | target | result |",
      "|---|---:|---|---|",
      row("durable allocations/s (aggregate)", `${ipamd.rate.toFixed(0)}/s (${lat(ipamd)}, ${ipamd.failedCount} failed${ipamd.why})`, "≥ 5,000/s, none failed", verdicts.rate),
      row("duplicates (full etcd scan)", `${mine.duplicates} (${mine.answered} answered, warm-up included, ${mine.stored} in etcd, ${mine.missing} answered but missing); previous main ${theirs.duplicates} (${theirs.missing} missing)`, "0", verdicts.duplicates),
      row("ipamd against raw etcd CAS txns/s (same rounds)", `raw ${raw.rate.toFixed(0)}/s (${raw.failedCount} failed${raw.why}); ipamd reaches ${(ipamd.rate / raw.rate).toFixed(2)}×`, "ipamd ≥ 2.0× raw, no raw txn failed", verdicts.raw),
      row(`against the previous main (${BASELINE_REF}), same cluster, load and rounds`, `${ipamd.rate.toFixed(0)} vs ${before.rate.toFixed(0)}/s (${(ipamd.rate / before.rate).toFixed(2)}×; previous main ${lat(before)}, ${before.failedCount} failed${before.why}; it reaches ${(before.rate / raw.rate).toFixed(2)}× raw)`, "≥ 0.95× previous", verdicts.baseline),
      row("plugin ADD p50, etcd vs embedded", `${p(onEtcd, 0.5).toFixed(2)} vs ${p(onSqlite, 0.5).toFixed(2)} ms (${pluginRatio.toFixed(2)}×)`, "≤ 1.5×", verdicts.plugin),
      row("etcd keys read per node sweep (netns read, GC list, prune); at start, the list of every block", sweep.row, "sweep flat: largest ≤ 1.1× smallest", verdicts.sweep),
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
