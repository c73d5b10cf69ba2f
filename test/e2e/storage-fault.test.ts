/**
 * The embedded store on a real, small tmpfs: a full disk and a read-only file system are named
 * for what they are (path, cause, code), logged once per cause, make STATUS fail, and pass
 * without a restart and without losing anything acknowledged.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fill, smallDisk } from "./disk.ts";
import { attachmentEnv, cleanup, type Daemon, DIST_DIR, netconf, runPlugin, startDaemon, waitFor } from "./harness.ts";
import { mustRun } from "./netns.ts";

afterEach(cleanup);

const status = (daemon: Daemon) => runPlugin({ CNI_COMMAND: "STATUS", CNI_PATH: DIST_DIR }, netconf(daemon.socket, {}, {}, "1.1.0"));

async function add(daemon: Daemon, id: string) {
  return runPlugin(attachmentEnv("ADD", id), netconf(daemon.socket, { ranges: [[{ subnet: "10.62.0.0/16" }]] }, {}, "1.1.0"));
}

/** ADD again of a known attachment: the address it was acknowledged with, or an error. */
async function addressOf(daemon: Daemon, id: string): Promise<string | undefined> {
  return (await add(daemon, id)).json?.ips?.[0]?.address;
}

const errorLines = (daemon: Daemon, part: string) =>
  daemon.stderr().split("\n").filter((line) => line.includes('"level":"error"') && line.includes(part));

describe("storage faults on the embedded store", () => {
  test("disk full: code 11 naming the store and the cause, one error line, STATUS 50; space back: resumes, nothing lost", async () => {
    const disk = await smallDisk("2m");
    const db = join(disk, "ipamd.db");
    const daemon = await startDaemon({ args: ["--db", db] });
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      const r = await add(daemon, `before${i}`);
      expect(r.exitCode).toBe(0);
      acknowledged.set(`before${i}`, r.json.ips[0].address);
    }
    const filler = fill(disk);
    const failures = [];
    for (let i = 0; i < 4; i++) failures.push(await add(daemon, `full${i}`));
    for (const r of failures) {
      expect(r.exitCode).not.toBe(0);
      expect(r.json.code).toBe(11);
      expect(r.json.msg).toContain(`store ${db}: the disk is full`);
      expect(r.json.msg).not.toContain("internal error");
    }
    expect(errorLines(daemon, "the disk is full")).toHaveLength(1);
    const unavailable = await status(daemon);
    expect(unavailable.json?.code).toBe(50);
    expect(unavailable.json.msg).toContain("the disk is full");

    rmSync(filler);
    // STATUS re-probes the store by itself: no pod has to try first.
    await waitFor(async () => (await status(daemon)).exitCode === 0, 5000, "STATUS to pass again");
    const after = await add(daemon, "after0");
    expect(after.exitCode).toBe(0);
    acknowledged.set("after0", after.json.ips[0].address);
    // What failed left nothing behind: the failed ADDs' attachments hold nothing.
    const held = await fetch("http://ipamd/v1/allocations?container=full0", { unix: daemon.socket });
    expect(((await held.json()) as { allocations: unknown[] }).allocations).toEqual([]);

    expect(await daemon.stop()).toBe(0);
    const again = await startDaemon({ args: ["--db", db] });
    for (const [id, address] of acknowledged) expect({ id, address: await addressOf(again, id) }).toEqual({ id, address });
  }, 60_000);

  test("a read-only file system: the daemon refuses to start, naming the store and the cause", async () => {
    const disk = await smallDisk("4m");
    const db = join(disk, "ipamd.db");
    const first = await startDaemon({ args: ["--db", db] });
    expect((await add(first, "rw0")).exitCode).toBe(0);
    expect(await first.stop()).toBe(0);
    // A file system turns read-only under a running daemon only by the kernel's own hand (an
    // ext4 error); with no device mapper here, the daemon meets it at start.
    await mustRun(["mount", "-o", "remount,ro", disk]);
    const refused = await startDaemon({ args: ["--db", db] }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toContain(`store ${db}: the file system is read-only`);
    await mustRun(["mount", "-o", "remount,rw", disk]);
  }, 60_000);

  test("a daemon started on a full disk does not claim to serve: STATUS 50 and an error line; space back: it serves", async () => {
    const disk = await smallDisk("2m");
    const db = join(disk, "ipamd.db");
    const first = await startDaemon({ args: ["--db", db] });
    expect((await add(first, "c0")).exitCode).toBe(0);
    expect(await first.stop()).toBe(0);
    const filler = fill(disk);
    // It may refuse to start at all, or start and say it cannot serve: never "serving" quietly.
    const daemon = await startDaemon({ args: ["--db", db], unavailable: true }).catch((err: Error) => err);
    if (daemon instanceof Error) {
      expect(daemon.message).toContain(db);
      return;
    }
    // Its error line is read from a pipe: it may come a moment after the socket does.
    await waitFor(() => daemon.stderr().includes("NOT serving pods"), 5000, "the daemon to say it is not serving");
    expect(daemon.stderr()).not.toContain('"msg":"ipamd serving"');
    const unavailable = await status(daemon);
    expect(unavailable.json?.code).toBe(50);
    rmSync(filler);
    await waitFor(async () => (await add(daemon, "c1")).exitCode === 0, 5000, "ADD to work once space is back");
    expect(existsSync(db)).toBe(true);
  }, 60_000);
});
