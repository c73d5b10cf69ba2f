/**
 * CI's closing line (.ci/closing-line) read from real bun test runs: crafted test files in a
 * temp dir, run by the same bun, their log and exit status handed to the script as .ci/run
 * does. Errors outside any test count as failures; a run without bun's summary is never green.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cleanup, tempDir } from "../e2e/harness.ts";

afterAll(cleanup);

const SCRIPT = resolve(import.meta.dir, "../../.ci/closing-line");

/** Runs `bun test` on the given files in a fresh dir; returns its whole output and exit status. */
async function bunTest(files: Record<string, string>): Promise<{ log: string; status: number }> {
  const dir = tempDir("ipamd-ci-");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const proc = Bun.spawn([process.execPath, "test"], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const [out, err, status] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { log: out + err, status };
}

/** The script on a log: its last line and its exit status. */
async function closingLine(log: string, status: number): Promise<{ line: string; exit: number; output: string }> {
  const file = join(tempDir("ipamd-ci-log-"), "make-test.log");
  writeFileSync(file, log);
  const proc = Bun.spawn(["bash", SCRIPT, file, String(status)], { stdout: "pipe", stderr: "pipe" });
  const [output, exit] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { line: output.trim().split("\n").at(-1)!, exit, output };
}

const passing = `import { expect, test } from "bun:test";\ntest("one", () => expect(1).toBe(1));\ntest("two", () => expect(2).toBe(2));\n`;

describe("CI's closing line", () => {
  test("a green run: N passed, 0 failed, exit 0", async () => {
    const run = await bunTest({ "ok.test.ts": passing });
    expect(run.status).toBe(0);
    expect(await closingLine(run.log, run.status)).toMatchObject({ line: "2 passed, 0 failed", exit: 0 });
  }, 30_000);

  test("an expect that fails in afterAll is a failure, not a green line", async () => {
    const run = await bunTest({
      "after.test.ts": `import { afterAll, expect, test } from "bun:test";\nafterAll(() => { expect("cleaned").toBe("left behind"); });\ntest("passes", () => expect(1).toBe(1));\n`,
    });
    expect(run.status).not.toBe(0);
    const closing = await closingLine(run.log, run.status);
    expect(closing.line).toMatch(/^\d+ passed, [1-9]\d* failed$/);
    expect(closing.exit).not.toBe(0);
  }, 30_000);

  test("a top-level await that throws is a failure: bun's ' N error' line", async () => {
    const run = await bunTest({
      "ok.test.ts": passing,
      "boom.test.ts": `import { test } from "bun:test";\nawait Promise.reject(new Error("top-level boom"));\ntest("never runs", () => {});\n`,
    });
    expect(run.log).toMatch(/^ *1 error$/m);
    expect(run.status).not.toBe(0);
    const closing = await closingLine(run.log, run.status);
    expect(closing.line).toMatch(/^2 passed, [1-9]\d* failed$/);
    expect(closing.exit).not.toBe(0);
  }, 30_000);

  test("errors count as failures even where ' N fail' does not include them", async () => {
    // The shape the old closing line turned into "3 passed, 0 failed" while exiting 1.
    const closing = await closingLine(" 3 pass\n 0 fail\n 1 error\n 9 expect() calls\nRan 3 tests across 2 files. [1.00s]\n", 1);
    expect(closing).toMatchObject({ line: "3 passed, 1 failed", exit: 1 });
    // Where bun already counted them among the failures, they are not counted twice.
    expect((await closingLine(" 3 pass\n 2 fail\n 1 error\n", 1)).line).toBe("3 passed, 2 failed");
  });

  test("a run that ended before bun's summary says so and is a failure", async () => {
    const closing = await closingLine("bun build src/main.ts ...\nerror: Could not resolve: \"./nope.ts\"\nmake: *** [Makefile:31: dist/ipamd] Error 1\n", 2);
    expect(closing.output).toContain("before bun's summary");
    expect(closing).toMatchObject({ line: "0 passed, 1 failed", exit: 2 });
  });

  test("a non-zero status with no failure reported is never read as green", async () => {
    const closing = await closingLine(" 12 pass\n 0 fail\n 30 expect() calls\nRan 12 tests across 2 files. [1.00s]\nSegmentation fault (core dumped)\n", 139);
    expect(closing).toMatchObject({ line: "12 passed, 1 failed", exit: 139 });
  });
});
