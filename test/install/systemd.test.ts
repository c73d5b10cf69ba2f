/**
 * `install --systemd`: the unit passes `systemd-analyze verify` (against the temporary host
 * root, where ExecStart's /opt/cni/bin/ipamd exists), and its sandbox still lets the daemon
 * create its socket and database: the daemon runs under the same restrictions reproduced
 * with unshare and setpriv (read-only root with only the two writable directories, no
 * capabilities, no new privileges, umask 0077) and serves an ADD.
 */
import { afterEach, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup, onCleanup, runPlugin, tempDir, waitFor } from "../e2e/harness.ts";
import { hostSetup, runOk } from "./helpers.ts";

afterEach(cleanup);

function unitSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  return settings;
}

function systemdAnalyze(): string {
  const path = Bun.which("systemd-analyze");
  if (!path) throw new Error("systemd-analyze is missing: apt-get install -y systemd (CI must install it)");
  return path;
}

test("the unit passes systemd-analyze verify without a warning, and install prints how to enable it", async () => {
  const analyze = systemdAnalyze();
  const h = hostSetup();
  const { stdout } = await runOk(["install", "--host-root", h.host, "--systemd"]);
  expect(stdout).toContain(`installed systemd unit ${h.unit}`);
  expect(stdout).toContain("systemctl daemon-reload && systemctl enable --now ipamd");
  expect(statSync(h.unit).mode & 0o777).toBe(0o644);
  const unit = unitSettings(readFileSync(h.unit, "utf8"));
  expect(unit.get("ExecStart")![0]).toStartWith("/opt/cni/bin/ipamd serve"); // the host's path, not the host root's
  expect(unit.get("Restart")).toEqual(["on-failure"]);
  expect(unit.get("ProtectSystem")).toEqual(["strict"]);
  expect(unit.get("ReadWritePaths")).toEqual(["/run/ipamd /var/lib/ipamd"]);
  expect(unit.get("RuntimeDirectory")).toEqual(["ipamd"]);
  expect(unit.get("RuntimeDirectoryMode")).toEqual(["0700"]);
  expect(unit.get("StateDirectory")).toEqual(["ipamd"]);
  for (const key of ["NoNewPrivileges", "ProtectHome", "PrivateTmp"]) expect(unit.get(key)).toEqual(["yes"]);

  // verify resolves units and executables inside --root: give it systemd's own units there.
  cpSync("/usr/lib/systemd/system", join(h.host, "usr/lib/systemd/system"), { recursive: true, dereference: false });
  const verify = Bun.spawnSync([analyze, "verify", `--root=${h.host}`, "ipamd.service"], { stdout: "pipe", stderr: "pipe" });
  const output = `${verify.stdout.toString()}${verify.stderr.toString()}`;
  expect({ exitCode: verify.exitCode, output }).toEqual({ exitCode: 0, output: "" });
}, 30_000);

test("verify notices a unit whose ExecStart does not exist (the check is real)", () => {
  const analyze = systemdAnalyze();
  const h = hostSetup();
  Bun.spawnSync([BINARY, "install", "--host-root", h.host, "--systemd"]);
  Bun.spawnSync(["rm", h.bin]);
  cpSync("/usr/lib/systemd/system", join(h.host, "usr/lib/systemd/system"), { recursive: true });
  const verify = Bun.spawnSync([analyze, "verify", `--root=${h.host}`, "ipamd.service"], { stdout: "pipe", stderr: "pipe" });
  expect(verify.exitCode).not.toBe(0);
  expect(verify.stderr.toString()).toContain("/opt/cni/bin/ipamd");
}, 30_000);

test("uninstall --systemd removes the unit too", async () => {
  const h = hostSetup();
  await runOk(["install", "--host-root", h.host, "--systemd", "--conf", h.confFile]);
  const { stdout } = await runOk(["install", "--host-root", h.host, "--systemd", "--conf", h.confFile, "--uninstall"]);
  expect(stdout).toContain("systemctl disable --now ipamd");
  for (const f of [h.unit, h.bin, h.netconf]) expect(existsSync(f)).toBe(false);
}, 30_000);

test("the daemon serves under the unit's sandbox: read-only root except its two directories, no capabilities", async () => {
  const h = hostSetup();
  await runOk(["install", "--host-root", h.host, "--systemd"]);
  const unit = unitSettings(readFileSync(h.unit, "utf8"));
  expect(unit.get("CapabilityBoundingSet")).toEqual([""]);
  expect(unit.get("UMask")).toEqual(["0077"]);
  // Stand-ins for /run/ipamd and /var/lib/ipamd, made the way systemd makes them (0700).
  const dir = tempDir("ipamd-sandbox-");
  const runtime = join(dir, "run/ipamd");
  const state = join(dir, "lib/ipamd");
  for (const d of [runtime, state]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const args = unit.get("ExecStart")![0]!.split(" ").slice(1).map((a) => a.replace("/run/ipamd", runtime).replace("/var/lib/ipamd", state));
  const socket = args[args.indexOf("--socket") + 1]!;
  // ProtectSystem=strict + ReadWritePaths, then CapabilityBoundingSet=, NoNewPrivileges, UMask.
  const script = `set -e
mount --bind "$RUNTIME" "$RUNTIME"; mount --bind "$STATE" "$STATE"
for m in / "$(findmnt -n -o TARGET -T "$DIR")"; do mount -o remount,bind,ro "$m"; done
if touch "$DIR/escape" 2>/dev/null; then echo "root is still writable" >&2; exit 3; fi
umask 0077
exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs "$BIN" "$@"`;
  const config = join(dir, "config.json");
  writeFileSync(config, "{}");
  const proc = Bun.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", ...args, "--config", config], {
    env: { ...process.env, RUNTIME: runtime, STATE: state, DIR: dir, BIN: h.bin },
    stdout: "pipe",
    stderr: "pipe",
  });
  onCleanup(async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`the sandboxed daemon exited ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
    return (await runPlugin({ CNI_COMMAND: "STATUS", CNI_PATH: "/opt/cni/bin" }, { cniVersion: "1.1.0", name: "sandbox", ipam: { type: "ipamd", socket } })).exitCode === 0;
  }, 10_000, "the sandboxed daemon to answer");
  const add = await runPlugin(
    { CNI_COMMAND: "ADD", CNI_CONTAINERID: "sandbox1", CNI_NETNS: "/var/run/netns/sandbox1", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" },
    { cniVersion: "1.0.0", name: "sandbox", type: "bridge", ipam: { type: "ipamd", socket, ranges: [[{ subnet: "10.77.0.0/24" }]] } },
  );
  expect(add.json?.ips?.[0]?.address).toBe("10.77.0.2/24");
  expect(statSync(socket).mode & 0o777).toBe(0o600);
  expect(existsSync(join(state, "ipamd.db"))).toBe(true);
  expect(existsSync(join(dir, "escape"))).toBe(false);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  expect(existsSync(socket)).toBe(false);
}, 30_000);
