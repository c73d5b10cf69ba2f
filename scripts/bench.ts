/**
 * `make bench`: issue 4's suite in one run, ipamd side by side with Debian's host-local (where
 * it can run) and the Bun floor, from an empty pool to a million live addresses.
 *
 *   make bench                       (builds dist/ipamd, then runs this with the repo's bun)
 *   BENCH_SAMPLES=100 BENCH_MAX=100000 BENCH_OPS=5000 node_modules/.bin/bun scripts/bench.ts
 *
 * Env: BENCH_SAMPLES exec samples per figure (300), BENCH_FILL host-local comparison fill
 * (10,000), BENCH_MAX largest fill (1,000,000), BENCH_OPS ADD+DEL pairs per throughput level
 * (30,000).
 *
 * Sections (scripts/bench-suite/*.ts): 0 this build against the previous main's, same run
 * (baseline.ts: plugin ADD/DEL, empty and FILL in use, and socket throughput at 256 clients);
 * 1 exec cost on an empty pool (VERSION, STATUS, ADD, DEL against the round-trip floor, and the
 * daemon's CPU per STATUS), 2 ADD and DEL with FILL in use (exec.ts, exec-figures.ts, the
 * no-op servers in floors.ts); 3 flatness at 100k and 1M against a second, empty daemon
 * sampled in the same rounds, and ADD and DEL at 1M against the round-trip floor; 4 socket
 * throughput at 1/16/64/256 clients against the socket floor (throughput.ts); 5 RSS and
 * restart (memory.ts), 5b a 99.9% full pool (nearly-full.ts); 6 cost growth against the empty
 * daemon, and its plot (growth.ts); 7 plugin ADD p99 while twelve clients read the largest
 * allocation pages (admin-load.ts). The README's Performance section says how each verdict
 * is computed.
 * Fills go through the daemon's import API (fill.ts), never SQL.
 *
 * Targets are never loosened: a miss prints MISSED with the number, and the exit code is 1.
 * It starts its own `dist/ipamd serve` on a temp socket and database and gives host-local a
 * temp dataDir; both, and the daemon, are removed at the end even on failure or Ctrl-C.
 * Results: a Markdown table on stdout, bench/results.json and bench/growth.svg.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { baselineSocket, cleanup, emptySocket, type Figure, FILL, HOST_LOCAL, IPAMD, liveAllocations, MAX, ROOT, SAMPLES, socket, startDaemon, startEmptyDaemon, SUBNET, THROUGHPUT_OPS } from "./bench-suite/common.ts";
import { measure, prepareBinaries, statusCpu } from "./bench-suite/exec.ts";
import { flatnessFigure, overRoundTrip, statusCpuFigure } from "./bench-suite/exec-figures.ts";
import { startFloors } from "./bench-suite/floors.ts";
import { fillHostLocal, fillTo } from "./bench-suite/fill.ts";
import { growthFigures, growthSvg } from "./bench-suite/growth.ts";
import { restartFigure, rssFigure, settledRss } from "./bench-suite/memory.ts";
import { nearlyFullFigure } from "./bench-suite/nearly-full.ts";
import { addThenDel, type GrowthPoint, growthPoint, interleaved, throughputFigures } from "./bench-suite/throughput.ts";
import { adminLoadFigures } from "./bench-suite/admin-load.ts";
import { baselineFigure, startBaselineDaemon } from "./bench-suite/baseline.ts";
import { baselineBinary } from "./bench-suite/exec.ts";

/** Plugin STATUS execs over which the daemon's CPU per STATUS is taken. */
const STATUS_CPU_EXECS = 200;

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void cleanup().finally(() => process.exit(130)));

const fmt = (x: number, unit: string) => (unit.startsWith("ms") ? x.toFixed(2) : Math.round(x).toLocaleString("en"));

function table(figures: Figure[]): string {
  return [
    "| section | figure | ipamd | unit | peer | peer value | ratio | target | result |",
    "|---|---|---:|---|---|---:|---:|---|---|",
    ...figures.map((f) =>
      `| ${f.section} | ${f.name} | ${fmt(f.ipamd, f.unit)} | ${f.unit} | ${f.peerName ?? "—"} | ${f.peer === null ? "—" : fmt(f.peer, f.unit)} | ${f.ratio === null ? "—" : `${f.ratio.toFixed(2)}×`} | ${f.target} | ${f.detail} |`),
  ].join("\n");
}

const log = (text: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${text}`);

try {
  for (const bin of [IPAMD, HOST_LOCAL]) if (!(await Bun.file(bin).exists())) throw new Error(`${bin} is missing (make build; make system-deps)`);
  const started = performance.now();
  await prepareBinaries();
  await startDaemon();
  await startFloors(); // the servers of the round-trip floors and the socket floor
  await startEmptyDaemon(); // the peer of flatness and growth, sampled beside the filled one
  await startBaselineDaemon(baselineBinary); // the previous main, filled and sampled alike
  await addThenDel(16, 2000, emptySocket); // warm-up: JIT, connections, sqlite's cache
  const rss0 = await settledRss();
  log(`daemon up, RSS ${(rss0 / 2 ** 20).toFixed(1)} MiB with 0 allocations; ${SAMPLES} interleaved samples per exec figure; bun ${Bun.version}`);

  const empty = await measure(["VERSION", "STATUS", "ADD", "DEL"], ["floor", "stdin", "roundTrip", "durable", "ipamd", "hostLocal"], "empty");
  const figures: Figure[] = [
    overRoundTrip("1 exec, empty", "VERSION", empty.VERSION!, empty.ADD!, 0.3),
    overRoundTrip("1 exec, empty", "STATUS", empty.STATUS!, empty.ADD!, 0.3),
    overRoundTrip("1 exec, empty", "ADD, empty pool", empty.ADD!, empty.ADD!, 1.0),
    overRoundTrip("1 exec, empty", "DEL, empty pool", empty.DEL!, empty.ADD!, 1.0),
    statusCpuFigure(await statusCpu(STATUS_CPU_EXECS), STATUS_CPU_EXECS),
  ];
  const before = await measure(["ADD", "DEL"], ["ipamd", "baseline"], "base-empty");
  figures.push(baselineFigure("plugin ADD, empty pool", "ms p50", before.ADD!.ipamd!, before.ADD!.baseline!), baselineFigure("plugin DEL, empty pool", "ms p50", before.DEL!.ipamd!, before.DEL!.baseline!));
  log("section 1 done; section 4: throughput");
  figures.push(...(await throughputFigures([1, 16, 64, 256], THROUGHPUT_OPS)));
  const [now256, before256] = await interleaved(256, THROUGHPUT_OPS, socket, baselineSocket);
  figures.push(baselineFigure("socket ADD+DEL, 256 clients", "allocations/s", now256.perSecond, before256.perSecond, true));

  const levels = [1_000, 10_000, 100_000, 1_000_000].filter((l) => l <= MAX);
  const growth: GrowthPoint[] = [];
  for (const level of [...new Set([...levels, FILL])].sort((a, b) => a - b)) {
    const seconds = await fillTo(level);
    log(`filled ipamd to ${(await liveAllocations()).toLocaleString("en")} (+${seconds.toFixed(1)} s through /v1/import)`);
    if (levels.includes(level)) growth.push(await growthPoint(level, Math.min(THROUGHPUT_OPS, 10_000)));
    if (level === Math.min(100_000, MAX)) figures.push(...(await adminLoadFigures(level)));
    if (level === FILL) {
      await fillHostLocal(FILL);
      await fillTo(FILL, baselineSocket);
      const filledBefore = await measure(["ADD", "DEL"], ["ipamd", "baseline"], "base-full");
      figures.push(baselineFigure(`plugin ADD, ${FILL} in use`, "ms p50", filledBefore.ADD!.ipamd!, filledBefore.ADD!.baseline!));
      const full = await measure(["ADD", "DEL"], ["floor", "stdin", "roundTrip", "durable", "ipamd", "hostLocal"], "full");
      const section = `2 exec, ${FILL.toLocaleString("en")} in use`;
      figures.push(overRoundTrip(section, `ADD, ${FILL.toLocaleString("en")} in use`, full.ADD!, full.ADD!, 1.0), overRoundTrip(section, `DEL, ${FILL.toLocaleString("en")} in use`, full.DEL!, full.ADD!, 1.0));
    }
    if (level === 100_000 || level === 1_000_000) {
      const flat = await measure(["ADD", "DEL"], ["floor", "stdin", "roundTrip", "durable", "ipamd", "ipamdEmpty"], `flat${level}`);
      figures.push(flatnessFigure(level, flat.ADD!));
      if (level === 1_000_000) {
        const section = "3 exec, 1,000,000 in use";
        figures.push(overRoundTrip(section, "ADD, 1,000,000 in use", flat.ADD!, flat.ADD!, 1.0), overRoundTrip(section, "DEL, 1,000,000 in use", flat.DEL!, flat.ADD!, 1.0));
      }
    }
  }
  const top = levels.at(-1) ?? FILL;
  const rssFilled = await settledRss();
  figures.push(rssFigure(`RSS, ${top.toLocaleString("en")} live, after filling`, top, rssFilled, rss0));
  const restart = await restartFigure(top);
  const rssRestarted = await settledRss();
  figures.push(rssFigure(`RSS, ${top.toLocaleString("en")} live, after restart`, top, rssRestarted, rss0), restart.figure);
  if (growth.length > 0) figures.push(...growthFigures(growth));
  log("section 5b: a 99.9% full, fragmented pool");
  figures.push(await nearlyFullFigure());

  const minutes = (performance.now() - started) / 60_000;
  console.log(`\n${table(figures)}\n\nexec figures: wall time per exec in ms, ${SAMPLES} samples each, interleaved; socket figures: durable (synchronous=FULL) ADD then DEL; bun ${Bun.version}, ${navigator.hardwareConcurrency} cpus; ${minutes.toFixed(1)} min`);
  mkdirSync(join(ROOT, "bench"), { recursive: true });
  await Bun.write(join(ROOT, "bench/results.json"), `${JSON.stringify({ date: new Date().toISOString(), bun: Bun.version, cpus: navigator.hardwareConcurrency, samples: SAMPLES, fill: FILL, max: MAX, subnet: SUBNET, figures, growth }, null, 2)}\n`);
  if (growth.length > 0) await Bun.write(join(ROOT, "bench/growth.svg"), growthSvg(growth, `ipamd ${new Date().toISOString().slice(0, 10)}, bun ${Bun.version}, ${navigator.hardwareConcurrency} cpus`));
  console.log("results: bench/results.json, bench/growth.svg");
  process.exitCode = figures.some((f) => f.pass === false) ? 1 : 0;
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exitCode = 2;
} finally {
  await cleanup();
}
