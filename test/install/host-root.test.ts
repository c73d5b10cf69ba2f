/**
 * `--host-root /host`: the host's filesystem mounted in the installer's container. A symlink
 * in it is the host's, but this container's kernel follows it: an absolute link, or a relative
 * one that climbs out of the mount, leads outside the host root, and the installer must not
 * write, chmod or remove anything through it. Every "outside" here is a temp dir of the test,
 * so a regression lands there, not in the machine's /usr/bin.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup } from "../e2e/harness.ts";
import { hostSetup, run, runOk } from "./helpers.ts";

afterEach(cleanup);

function expectRefused(result: { exitCode: number; stderr: string }, link: string, pointsTo: string): void {
  expect({ exitCode: result.exitCode, lines: result.stderr.trim().split("\n").length }).toEqual({ exitCode: 1, lines: 1 });
  expect(result.stderr).toStartWith(`ipamd install: ${link} is a symlink to ${pointsTo}`);
  expect(result.stderr).toContain("outside the host root");
}

describe("install --host-root and symlinks in the host's tree", () => {
  test("an absolute symlink (/host/opt/cni/bin -> /elsewhere) is refused and nothing is written anywhere", async () => {
    const h = hostSetup();
    const outside = join(h.dir, "outside-bin");
    mkdirSync(outside);
    mkdirSync(join(h.host, "opt/cni"), { recursive: true });
    symlinkSync(outside, join(h.host, "opt/cni/bin"));
    const result = await run(["install", "--host-root", h.host, "--conf", h.confFile]);
    expectRefused(result, join(h.host, "opt/cni/bin"), outside);
    expect(result.stderr).toContain(`(the host means ${join(h.host, outside)}); refusing to follow it`);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(h.netconf)).toBe(false); // checked before anything is written
  });

  test("a relative symlink that climbs out of the host root is refused", async () => {
    const h = hostSetup();
    const outside = join(h.dir, "outside-conf");
    mkdirSync(outside);
    mkdirSync(join(h.host, "etc/cni"), { recursive: true });
    symlinkSync("../../../outside-conf", join(h.host, "etc/cni/net.d"));
    const result = await run(["install", "--host-root", h.host, "--conf", h.confFile]);
    expectRefused(result, join(h.host, "etc/cni/net.d"), "../../../outside-conf");
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(h.bin)).toBe(false);
  });

  test("the installed file itself as an absolute symlink: its outside target is not chmod'ed", async () => {
    const h = hostSetup();
    const outside = join(h.dir, "outside-ipamd");
    copyFileSync(BINARY, outside);
    chmodSync(outside, 0o700); // same content, another mode: an install through the link would chmod it
    mkdirSync(join(h.host, "opt/cni/bin"), { recursive: true });
    symlinkSync(outside, h.bin);
    const result = await run(["install", "--host-root", h.host, "--conf", h.confFile]);
    expectRefused(result, h.bin, outside);
    expect(statSync(outside).mode & 0o7777).toBe(0o700);
  });

  test("uninstall does not remove a file through a link that leaves the host root", async () => {
    const h = hostSetup();
    const outside = join(h.dir, "outside-bin");
    mkdirSync(outside);
    writeFileSync(join(outside, "ipamd"), "not the host's");
    mkdirSync(join(h.host, "opt/cni"), { recursive: true });
    symlinkSync(outside, join(h.host, "opt/cni/bin"));
    const result = await run(["install", "--host-root", h.host, "--uninstall"]);
    expectRefused(result, join(h.host, "opt/cni/bin"), outside);
    expect(readFileSync(join(outside, "ipamd"), "utf8")).toBe("not the host's");
  });

  test("a relative symlink that stays inside the host root is followed, as the host would", async () => {
    const h = hostSetup();
    mkdirSync(join(h.host, "usr/lib/cni"), { recursive: true });
    mkdirSync(join(h.host, "opt/cni"), { recursive: true });
    symlinkSync("../../usr/lib/cni", join(h.host, "opt/cni/bin"));
    await runOk(["install", "--host-root", h.host, "--conf", h.confFile]);
    expect(readFileSync(join(h.host, "usr/lib/cni/ipamd")).equals(readFileSync(BINARY))).toBe(true);
  });

  test("without --host-root, symlinks are the host's own and are followed", async () => {
    const h = hostSetup();
    const real = join(h.dir, "real-bin");
    mkdirSync(real);
    symlinkSync(real, join(h.dir, "bin-link"));
    await runOk(["install", "--bin-dir", join(h.dir, "bin-link")]);
    expect(readdirSync(real)).toEqual(["ipamd"]);
  });
});
