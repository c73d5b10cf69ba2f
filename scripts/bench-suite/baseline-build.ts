/**
 * Building the previous main's binary, to measure this build against it in the same run: from
 * a git ref (BENCH_BASELINE, by default the last main before the allocation engine) in a
 * temporary worktree beside `out`, with this checkout's node_modules and the Makefile's flags.
 */
import { rmSync, symlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

/** The last commit of main before the allocation engine replaced the service. */
export const BASELINE_REF = process.env.BENCH_BASELINE ?? "63e896a";
const BUILD_FLAGS = ["--compile", "--splitting", "--minify", "--bytecode", "--format=esm", "--target=bun"]; // as the Makefile

async function git(args: string[]): Promise<void> {
  const proc = Bun.spawn(["git", ...args], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  if ((await proc.exited) !== 0) throw new Error(`git ${args.join(" ")} failed: ${await new Response(proc.stderr).text()}`);
}

/** Builds the baseline's dist/ipamd into `out`. */
export async function buildBaseline(out: string): Promise<void> {
  const tree = join(dirname(out), "baseline-src");
  await git(["worktree", "add", "--detach", tree, BASELINE_REF]);
  try {
    symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
    const build = Bun.spawnSync([process.execPath, "build", join(tree, "src/main.ts"), ...BUILD_FLAGS, "--outfile", out], { cwd: tree, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`building ${BASELINE_REF} failed: ${build.stderr.toString()}`);
  } finally {
    await git(["worktree", "remove", "--force", tree]).catch(() => rmSync(tree, { recursive: true, force: true }));
    await git(["worktree", "prune"]).catch(() => undefined);
  }
}

