/**
 * Upgrade while the runtime keeps executing the plugin: a separate process execs the
 * installed binary in a tight loop while two different builds of ipamd install themselves
 * over each other. Every exec must succeed (no ENOENT, no ETXTBSY, no half-written file).
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, cleanup, onCleanup, waitFor } from "../e2e/harness.ts";
import { hostSetup, runOk } from "./helpers.ts";

afterEach(cleanup);

const ROOT = resolve(import.meta.dir, "../..");

const LOOP = `
ok=0; fail=0
while [ ! -e "$STOP" ]; do
  if out=$("$BIN" version 2>&1) && [ "$out" = "$EXPECT" ]; then ok=$((ok+1)); else fail=$((fail+1)); printf '%s\\n' "$out" >> "$ERRORS"; fi
done
echo "$ok $fail" > "$RESULT"
`;

test("upgrading while another process executes the plugin in a loop never fails an exec", async () => {
  const h = hostSetup();
  // A second, different build of the same program: not minified, so every byte differs.
  const other = join(h.dir, "ipamd-other");
  const build = Bun.spawnSync([join(ROOT, "node_modules/.bin/bun"), "build", join(ROOT, "src/main.ts"), "--compile", "--format=esm", "--target=bun", "--outfile", other], { stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`building a second binary failed: ${build.stderr}`);
  expect(readFileSync(other).equals(readFileSync(BINARY))).toBe(false);

  await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
  const expected = (await runOk(["version"])).stdout.trim();
  const files = { STOP: join(h.dir, "stop"), RESULT: join(h.dir, "result"), ERRORS: join(h.dir, "errors") };
  const loop = Bun.spawn(["bash", "-c", LOOP], { env: { ...process.env, BIN: h.bin, EXPECT: expected, ...files }, stdout: "inherit", stderr: "inherit" });
  onCleanup(async () => {
    writeFileSync(files.STOP, "");
    if (loop.exitCode === null) {
      await Promise.race([loop.exited, Bun.sleep(3000)]);
      loop.kill("SIGKILL");
    }
  });

  let inode = statSync(h.bin).ino;
  for (let i = 0; i < 8; i++) {
    const installer = i % 2 === 0 ? other : BINARY;
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile], installer);
    expect(stdout).toContain(`installed binary ${h.bin}`);
    expect(readFileSync(h.bin).equals(readFileSync(installer))).toBe(true);
    // A new file renamed into place, never the old one rewritten (the old inode still exists
    // when the new one is created, so they differ).
    expect(statSync(h.bin).ino).not.toBe(inode);
    inode = statSync(h.bin).ino;
  }
  writeFileSync(files.STOP, "");
  await waitFor(() => loop.exitCode !== null, 10_000, "the exec loop to stop");
  const [ok, failed] = readFileSync(files.RESULT, "utf8").trim().split(" ").map(Number);
  const errors = failed ? readFileSync(files.ERRORS, "utf8") : "";
  expect({ failed, errors }).toEqual({ failed: 0, errors: "" });
  expect(ok).toBeGreaterThan(20); // the loop really ran across the upgrades
}, 120_000);
