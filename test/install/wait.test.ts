/**
 * `install --wait` as the DaemonSet's install-watch container runs it: the netconf comes
 * from a ConfigMap volume, which kubelet updates by writing a new timestamped directory and
 * swapping the `..data` symlink; the installed copy must follow, a bad update must not
 * replace a good file, and SIGTERM must end it cleanly.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup, onCleanup, tempDir, waitFor } from "../e2e/harness.ts";
import { CONFLIST } from "./helpers.ts";

afterEach(cleanup);

const NAME = "10-podnet.conflist";

/** A ConfigMap volume as kubelet lays it out: NAME -> ..data/NAME, ..data -> ..<stamp>. */
function configMapVolume(dir: string) {
  mkdirSync(dir, { recursive: true });
  let generation = 0;
  let current: string | null = null;
  const publish = (text: string) => {
    const stamp = `..2024_01_01_00_00_0${generation++}.${Math.random().toString(36).slice(2, 8)}`;
    mkdirSync(join(dir, stamp));
    writeFileSync(join(dir, stamp, NAME), text);
    symlinkSync(stamp, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    if (!existsSync(join(dir, NAME))) symlinkSync(join("..data", NAME), join(dir, NAME));
    if (current) rmSync(join(dir, current), { recursive: true, force: true });
    current = stamp;
  };
  return { publish, file: join(dir, NAME) };
}

const withSubnet = (subnet: string) => JSON.stringify({ ...CONFLIST, plugins: [{ ...CONFLIST.plugins[0], ipam: { type: "ipamd", ranges: [[{ subnet }]] } }] }, null, 2);

test("--wait re-installs when the ConfigMap file changes, keeps the good file on a bad update, and exits 0 on SIGTERM", async () => {
  const dir = tempDir("ipamd-wait-");
  const host = join(dir, "host");
  mkdirSync(host);
  const volume = configMapVolume(join(dir, "netconf"));
  volume.publish(withSubnet("10.22.0.0/24"));
  const installed = join(host, "etc/cni/net.d", NAME);
  const binary = join(host, "opt/cni/bin/ipamd");

  let stdout = "";
  let stderr = "";
  const proc = Bun.spawn([BINARY, "install", "--host-root", host, "--conf", volume.file, "--wait"], { stdout: "pipe", stderr: "pipe" });
  onCleanup(async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });
  const decoder = new TextDecoder();
  (async () => {
    for await (const chunk of proc.stdout) stdout += decoder.decode(chunk);
  })();
  (async () => {
    for await (const chunk of proc.stderr) stderr += decoder.decode(chunk);
  })();

  await waitFor(() => stdout.includes("watching"), 10_000, "the first install");
  expect(readFileSync(installed, "utf8")).toBe(withSubnet("10.22.0.0/24"));
  expect(existsSync(binary)).toBe(true);

  // A ConfigMap update: the new content appears within seconds.
  volume.publish(withSubnet("10.33.0.0/24"));
  await waitFor(() => readFileSync(installed, "utf8") === withSubnet("10.33.0.0/24"), 10_000, "the changed netconf to be installed");

  // A broken update is reported once and the installed file stays.
  volume.publish("{ not json");
  await waitFor(() => stderr.includes("is not valid JSON"), 10_000, "the bad netconf to be reported");
  expect(stderr).toContain("the installed files stay as they are");
  expect(readFileSync(installed, "utf8")).toBe(withSubnet("10.33.0.0/24"));
  expect(proc.exitCode).toBeNull();

  // Fixed again, then an installed file removed behind its back: both are put back.
  volume.publish(withSubnet("10.44.0.0/24"));
  await waitFor(() => readFileSync(installed, "utf8") === withSubnet("10.44.0.0/24"), 10_000, "the fixed netconf to be installed");
  rmSync(binary);
  await waitFor(() => existsSync(binary), 10_000, "the removed binary to be put back");
  expect(readFileSync(binary).equals(readFileSync(BINARY))).toBe(true);

  proc.kill("SIGTERM");
  expect(await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running 10 s after SIGTERM")])).toBe(0);
  // Stopping is not uninstalling.
  expect(existsSync(installed)).toBe(true);
}, 60_000);

test("--wait exits non-zero at once when the first install fails", async () => {
  const dir = tempDir("ipamd-wait-");
  mkdirSync(join(dir, "host"));
  writeFileSync(join(dir, NAME), "{ not json");
  const proc = Bun.spawn([BINARY, "install", "--host-root", join(dir, "host"), "--conf", join(dir, NAME), "--wait"], { stdout: "pipe", stderr: "pipe" });
  onCleanup(() => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running")]);
  expect(code).toBe(1);
  expect(await new Response(proc.stderr).text()).toMatch(/^ipamd install: netconf .* is not valid JSON/);
}, 30_000);
