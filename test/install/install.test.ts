/**
 * `ipamd install` into a temporary host root: what a DaemonSet's init container does on a
 * node, with real files and the real binary.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup } from "../e2e/harness.ts";
import { CONFLIST, hostSetup, run, runOk } from "./helpers.ts";

afterEach(cleanup);

const same = (a: string, b: string) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
const mode = (path: string) => statSync(path).mode & 0o7777;

describe("ipamd install", () => {
  test("first install copies the binary (0755) and the netconf (0644), byte for byte, leaving no temp file", async () => {
    const h = hostSetup();
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(same(h.bin, BINARY)).toBe(true);
    expect(mode(h.bin)).toBe(0o755);
    expect(readFileSync(h.netconf, "utf8")).toBe(readFileSync(h.confFile, "utf8"));
    expect(mode(h.netconf)).toBe(0o644);
    expect(stdout).toContain(`installed binary ${h.bin}`);
    expect(stdout).toContain(`installed netconf ${h.netconf}`);
    expect(readdirSync(join(h.host, "opt/cni/bin"))).toEqual(["ipamd"]);
    expect(readdirSync(join(h.host, "etc/cni/net.d"))).toEqual(["10-podnet.conflist"]);
    // The installed binary works.
    expect((await runOk(["version"], h.bin)).stdout).toBe((await runOk(["version"])).stdout);
  }, 30_000);

  test("an identical re-install writes nothing: inode and mtime stay", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const before = [statSync(h.bin), statSync(h.netconf)];
    await Bun.sleep(20);
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const after = [statSync(h.bin), statSync(h.netconf)];
    for (const [i, b] of before.entries()) {
      expect(after[i]!.ino).toBe(b.ino);
      expect(after[i]!.mtimeMs).toBe(b.mtimeMs);
    }
    expect(stdout).toContain(`binary ${h.bin} is up to date`);
    expect(stdout).toContain(`netconf ${h.netconf} is up to date`);
  }, 30_000);

  test("a wrong mode on identical content is corrected in place", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const ino = statSync(h.bin).ino;
    chmodSync(h.bin, 0o700);
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(mode(h.bin)).toBe(0o755);
    expect(statSync(h.bin).ino).toBe(ino);
  }, 30_000);

  test("a changed netconf replaces the installed one with a new inode", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const ino = statSync(h.netconf).ino;
    const changed = { ...CONFLIST, plugins: [{ ...CONFLIST.plugins[0], ipam: { type: "ipamd", ranges: [[{ subnet: "10.23.0.0/24" }]] } }] };
    writeFileSync(h.confFile, JSON.stringify(changed));
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(JSON.parse(readFileSync(h.netconf, "utf8"))).toEqual(changed);
    expect(statSync(h.netconf).ino).not.toBe(ino);
  }, 30_000);

  test("--bin-dir and --conf-dir are placed under --host-root; without --host-root they are used as given", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--bin-dir", "/usr/libexec/cni", "--conf-dir", "/etc/cni/alt", "--conf", h.confFile]);
    expect(same(join(h.host, "usr/libexec/cni/ipamd"), BINARY)).toBe(true);
    expect(existsSync(join(h.host, "etc/cni/alt/10-podnet.conflist"))).toBe(true);
    await runOk(["install", "--bin-dir", join(h.dir, "plain-bin")]);
    expect(same(join(h.dir, "plain-bin/ipamd"), BINARY)).toBe(true);
  }, 30_000);

  test("--dry-run says what it would write and changes nothing", async () => {
    const h = hostSetup();
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--systemd", "--dry-run"]);
    expect(stdout).toContain(`would write binary ${h.bin}`);
    expect(stdout).toContain(`would write netconf ${h.netconf}`);
    expect(stdout).toContain(`would write systemd unit ${h.unit}`);
    expect(readdirSync(h.host)).toEqual([]);
  }, 30_000);

  test("uninstall removes only what install wrote", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    writeFileSync(join(h.host, "opt/cni/bin/bridge"), "another plugin");
    writeFileSync(join(h.host, "etc/cni/net.d/99-other.conflist"), "{}");
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--uninstall"]);
    expect(stdout).toContain(`removed netconf ${h.netconf}`);
    expect(stdout).toContain(`removed binary ${h.bin}`);
    expect(readdirSync(join(h.host, "opt/cni/bin"))).toEqual(["bridge"]);
    expect(readdirSync(join(h.host, "etc/cni/net.d"))).toEqual(["99-other.conflist"]);
    // Again: nothing left to remove is not an error.
    expect((await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--uninstall"])).stdout).toContain("is not there");
  }, 30_000);

  test("uninstall leaves a netconf of the same name alone when it is not an ipamd network", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const foreign = JSON.stringify({ ...CONFLIST, plugins: [{ type: "bridge", ipam: { type: "host-local" } }] });
    writeFileSync(h.netconf, foreign);
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--uninstall"]);
    expect(stdout).toContain("not an ipamd network");
    expect(readFileSync(h.netconf, "utf8")).toBe(foreign);
  }, 30_000);

  const bad: [string, string, string, RegExp][] = [
    ["not JSON", "{nope", "10-x.conflist", /is not valid JSON/],
    ["no ipamd plugin", JSON.stringify({ ...CONFLIST, plugins: [{ type: "bridge", ipam: { type: "host-local" } }] }), "10-x.conflist", /no plugin has "ipam": \{"type": "ipamd"\}/],
    ["a bad subnet", JSON.stringify({ ...CONFLIST, plugins: [{ type: "bridge", ipam: { type: "ipamd", ranges: [[{ subnet: "10.0.0.0/33" }]] } }] }), "10-x.conflist", /plugins\.0\.ipam: invalid subnet/],
    ["an unsupported cniVersion", JSON.stringify({ ...CONFLIST, cniVersion: "9.9.9" }), "10-x.conflist", /cniVersion: is not a cniVersion ipamd supports/],
    ["a list named .conf", JSON.stringify(CONFLIST), "10-x.conf", /must end in \.conflist/],
    ["a single conf named .conflist", JSON.stringify({ cniVersion: "1.0.0", name: "x", type: "bridge", ipam: { type: "ipamd", pool: "a" } }), "10-x.conflist", /needs a "plugins" list/],
    ["a name the runtime ignores", JSON.stringify(CONFLIST), "10-x.yaml", /must end in \.conflist, \.conf or \.json/],
  ];
  test("a netconf with neither ranges nor pools is installed: the daemon's defaultPools serve it", async () => {
    const h = hostSetup(JSON.stringify({ cniVersion: "1.0.0", name: "x", type: "bridge", ipam: { type: "ipamd" } }), "10-x.conf");
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(readFileSync(h.netconf, "utf8")).toContain('"type":"ipamd"');
  }, 30_000);

  for (const [what, text, name, message] of bad) {
    test(`a netconf with ${what} is refused in one line, and nothing is written`, async () => {
      const h = hostSetup(text, name);
      const result = await run(["install", "--host-root", h.host, "--conf", h.confFile]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toStartWith("ipamd install: ");
      expect(readdirSync(h.host)).toEqual([]);
    }, 30_000);
  }

  test("a single-plugin .conf is accepted", async () => {
    const h = hostSetup({ cniVersion: "0.4.0", name: "one", type: "bridge", ipam: { type: "ipamd", subnet: "10.9.0.0/24" } }, "20-one.conf");
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(existsSync(h.netconf)).toBe(true);
  }, 30_000);

  const failures: [string, (h: ReturnType<typeof hostSetup>) => string[], RegExp][] = [
    ["a missing host root", (h) => ["--host-root", join(h.dir, "nope")], /host root .* is not a directory/],
    ["a missing netconf", (h) => ["--host-root", h.host, "--conf", join(h.dir, "none.conflist")], /netconf .* does not exist/],
    ["a relative --bin-dir", (h) => ["--host-root", h.host, "--bin-dir", "opt/cni/bin"], /--bin-dir must be an absolute path/],
    ["an unknown flag", () => ["--bogus"], /--bogus/],
    ["--wait with --uninstall", (h) => ["--host-root", h.host, "--wait", "--uninstall"], /cannot be combined/],
  ];
  for (const [what, args, message] of failures) {
    test(`${what} is one line on stderr and a non-zero exit`, async () => {
      const h = hostSetup();
      const result = await run(["install", ...args(h)]);
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }, 30_000);
  }

  test("install --help prints its usage; ipamd --help lists the verb", async () => {
    expect((await runOk(["install", "--help"])).stdout).toContain("--host-root");
    expect((await runOk(["--help"])).stdout).toContain("ipamd install [--bin-dir /opt/cni/bin]");
  }, 30_000);
});
