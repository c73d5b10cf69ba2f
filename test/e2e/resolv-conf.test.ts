/**
 * `ipam.resolvConf` is read by the plugin on every ADD, so a path that is not a small regular
 * file must fail fast with code 5 instead of hanging the pod start (a FIFO blocks its reader
 * until a writer comes) or eating memory (/dev/zero never ends). The plugin runs as a process,
 * killed if it is still running after PLUGIN_LIMIT_MS: a hang fails the test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, BINARY, cleanup, type Daemon, netconf, runPlugin, startDaemon, tempDir } from "./harness.ts";

const PLUGIN_LIMIT_MS = 3000;
const RESOLV = "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n";

let daemon: Daemon;
let dir: string;
beforeAll(async () => {
  daemon = await startDaemon();
  dir = tempDir();
});
afterAll(cleanup);

let unique = 0;
const add = (resolvConf: string) => {
  const name = `resolv-${unique++}`;
  return runPlugin(attachmentEnv("ADD", name), { ...netconf(daemon.socket, { resolvConf }), name }, BINARY, PLUGIN_LIMIT_MS);
};

async function expectIoFailure(path: string, why: string): Promise<void> {
  const started = performance.now();
  const run = await add(path);
  expect({ exitCode: run.exitCode, code: run.json?.code, stdout: run.json ? "" : run.stdout }).toEqual({ exitCode: 1, code: 5, stdout: "" });
  expect(run.json.msg).toBe(`cannot read resolvConf ${path}: ${why}`);
  expect(performance.now() - started).toBeLessThan(PLUGIN_LIMIT_MS);
}

describe("resolvConf", () => {
  test("a FIFO is refused at once (opening it would block until a writer comes)", async () => {
    const fifo = join(dir, "resolv.fifo");
    const made = Bun.spawnSync(["mkfifo", fifo]);
    expect(made.exitCode).toBe(0);
    await expectIoFailure(fifo, "not a regular file (a FIFO)");
  }, 10_000);

  test("a device such as /dev/zero is refused (it never ends)", async () => {
    await expectIoFailure("/dev/zero", "not a regular file (a character device)");
  }, 10_000);

  test("a directory is refused", async () => {
    const sub = join(dir, "a-directory");
    mkdirSync(sub);
    await expectIoFailure(sub, "not a regular file (a directory)");
  }, 10_000);

  test("a regular file over 64 KiB is refused", async () => {
    const big = join(dir, "big-resolv.conf");
    writeFileSync(big, `${RESOLV}${"# padding\n".repeat(7 * 1024)}`); // 70 KiB and more
    await expectIoFailure(big, "over 65536 bytes");
  }, 10_000);

  test("a missing file is refused", async () => {
    await expectIoFailure(join(dir, "nope"), "does not exist");
  }, 10_000);

  test("a regular file, and a symlink to one (as /etc/resolv.conf often is), fill dns; refusals allocated nothing", async () => {
    const file = join(dir, "resolv.conf");
    writeFileSync(file, RESOLV);
    const link = join(dir, "resolv-link.conf");
    symlinkSync(file, link);
    const dns = { nameservers: ["10.96.0.10"], search: ["default.svc.cluster.local"], options: ["ndots:5"] };
    for (const path of [file, link]) {
      const run = await add(path);
      expect(run.exitCode).toBe(0);
      expect(run.json.dns).toEqual(dns);
    }
    // The refused ADDs above never reached the daemon: every network's first address is free.
    const allocations = (await (await fetch("http://ipamd/v1/allocations", { unix: daemon.socket })).json()) as { allocations: unknown[] };
    expect(allocations.allocations).toHaveLength(2);
  }, 10_000);
});
