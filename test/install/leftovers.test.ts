/**
 * An install killed between writing its temporary file and renaming it leaves that file
 * beside the target (`.ipamd.ipamd-tmp-PID-RANDOM`, as big as the binary). The next install
 * removes such files at start, whether or not it has anything to write, and nothing else:
 * not another name, not a symlink or directory that merely looks like one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup } from "../e2e/harness.ts";
import { hostSetup, run, runOk } from "./helpers.ts";

afterEach(cleanup);

/** What a run killed mid-copy leaves: part of the binary, part of the netconf, under the temp names. */
function plantLeftovers(h: ReturnType<typeof hostSetup>) {
  const binDir = join(h.host, "opt/cni/bin");
  const confDir = join(h.host, "etc/cni/net.d");
  const leftovers = [join(binDir, ".ipamd.ipamd-tmp-4242-0badc0de"), join(confDir, ".10-podnet.conflist.ipamd-tmp-4243-deadbeef")];
  writeFileSync(leftovers[0]!, readFileSync(BINARY).subarray(0, 1 << 20));
  writeFileSync(leftovers[1]!, '{"cniVersion": "1.0.0", "na');
  // Not ours to remove: another file's temp name, names that only resemble ours, a symlink
  // and a directory with our pattern, and other plugins.
  const bystanders = [join(binDir, ".bridge.ipamd-tmp-4244-0badc0de"), join(binDir, "ipamd.ipamd-tmp-4245-0badc0de"), join(binDir, ".ipamd.ipamd-tmp-notes"), join(binDir, "bridge")];
  for (const path of bystanders) writeFileSync(path, "someone else's");
  const linkTarget = join(h.dir, "precious");
  writeFileSync(linkTarget, "precious");
  const link = join(binDir, ".ipamd.ipamd-tmp-4246-12345678");
  symlinkSync(linkTarget, link);
  const dir = join(confDir, ".10-podnet.conflist.ipamd-tmp-4247-87654321");
  mkdirSync(dir);
  writeFileSync(join(dir, "inside"), "kept");
  return { leftovers, bystanders, link, linkTarget, dir };
}

describe("temporary files left by a killed install", () => {
  test("are removed at the next install's start, even when nothing needs writing; nothing else is touched", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const p = plantLeftovers(h);
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(p.leftovers.filter((path) => existsSync(path))).toEqual([]);
    for (const path of p.leftovers) expect(stdout).toContain(`removed ${path}, left by an interrupted install`);
    expect(stdout).toContain(`binary ${h.bin} is up to date`);
    for (const path of p.bystanders) expect(readFileSync(path, "utf8")).toBe("someone else's");
    expect(lstatSync(p.link).isSymbolicLink()).toBe(true);
    expect(readFileSync(p.linkTarget, "utf8")).toBe("precious");
    expect(readFileSync(join(p.dir, "inside"), "utf8")).toBe("kept");
  });

  test("a first install into a directory holding leftovers removes them and installs", async () => {
    const h = hostSetup();
    const binDir = join(h.host, "opt/cni/bin");
    mkdirSync(binDir, { recursive: true });
    const leftover = join(binDir, ".ipamd.ipamd-tmp-99-abcdef01");
    copyFileSync(BINARY, leftover);
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(readdirSync(binDir)).toEqual(["ipamd"]);
  });

  test("a bad netconf changes nothing, leftovers included", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const p = plantLeftovers(h);
    writeFileSync(h.confFile, "{nope");
    expect((await run(["install", "--host-root", h.host, "--conf", h.confFile])).exitCode).toBe(1);
    expect(p.leftovers.filter((path) => existsSync(path))).toEqual(p.leftovers);
  });

  test("--dry-run names them and removes nothing", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const p = plantLeftovers(h);
    const { stdout } = await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--dry-run"]);
    for (const path of p.leftovers) {
      expect(stdout).toContain(`would remove ${path}, left by an interrupted install`);
      expect(existsSync(path)).toBe(true);
    }
  });

  test("uninstall removes them too", async () => {
    const h = hostSetup();
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    const p = plantLeftovers(h);
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile, "--uninstall"]);
    expect(p.leftovers.filter((path) => existsSync(path))).toEqual([]);
    expect(readdirSync(join(h.host, "opt/cni/bin")).sort()).toEqual([".bridge.ipamd-tmp-4244-0badc0de", ".ipamd.ipamd-tmp-4246-12345678", ".ipamd.ipamd-tmp-notes", "bridge", "ipamd.ipamd-tmp-4245-0badc0de"]);
  });
});
