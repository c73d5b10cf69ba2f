/**
 * The previous main, measured beside this build in the same run (the allocation-engine issue
 * asks that the figures be no worse than before it). Its binary is built from a git ref —
 * BENCH_BASELINE, by default the last main before the engine — in a temporary worktree with
 * this checkout's node_modules and the Makefile's flags, and serves on a socket and database
 * of its own. Both daemons are filled and sampled alike, interleaved.
 */
import { join } from "node:path";
import type { Subprocess } from "bun";
import { BASELINE_REF } from "./baseline-build.ts";
import { baselineSocket, daemonAnswers, type Figure, helpers, stats, tmp, verdict } from "./common.ts";

/** The baseline's daemon on its own socket and database; stopped by cleanup(). */
export async function startBaselineDaemon(binary: string): Promise<void> {
  const proc: Subprocess = Bun.spawn([binary, "serve", "--socket", baselineSocket, "--db", join(tmp, "baseline.db")], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  helpers.push(proc);
  const deadline = Date.now() + 60_000;
  while (!(await daemonAnswers(2000, baselineSocket))) {
    if (proc.exitCode !== null) throw new Error(`the baseline's ipamd serve exited with ${proc.exitCode}: ${await new Response(proc.stderr as ReadableStream).text()}`);
    if (Date.now() > deadline) throw new Error("the baseline's ipamd serve did not answer within 60 s");
    await Bun.sleep(2);
  }
}

/** Latency (lower is better) or throughput (higher): this build against the baseline, same run, within 5%. */
export function baselineFigure(name: string, unit: string, current: number[] | number, baseline: number[] | number, higherIsBetter = false): Figure {
  const now = typeof current === "number" ? current : stats(current).p50;
  const before = typeof baseline === "number" ? baseline : stats(baseline).p50;
  const ratio = now / before;
  const pass = higherIsBetter ? ratio >= 0.95 : ratio <= 1.05;
  return {
    section: "0 vs previous main",
    name,
    unit,
    ipamd: now,
    peer: before,
    peerName: `ipamd ${BASELINE_REF}`,
    ratio,
    target: higherIsBetter ? "≥ 0.95× previous" : "≤ 1.05× previous",
    pass,
    detail: verdict(pass, `${ratio.toFixed(2)}× the previous main's, same run`),
  };
}
