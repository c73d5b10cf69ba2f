/**
 * Who owns a socket and a store: a second `ipamd serve` must never take either from a daemon
 * that still runs, however slowly it answers, and the store's files are private whatever the
 * umask or the directory they are created in.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, cleanup, onCleanup, startDaemon, tempDir } from "./harness.ts";

afterEach(cleanup);

async function serve(args: string[], umask?: number): Promise<{ exitCode: number; stderr: string }> {
  // The umask is set by a shell around the exec, as systemd or a DaemonSet's shell would.
  const argv = umask === undefined ? [BINARY, ...args] : ["sh", "-c", `umask ${umask.toString(8)}; exec "$0" "$@"`, BINARY, ...args];
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { exitCode, stderr };
}

async function status(socket: string): Promise<number> {
  const res = await fetch("http://ipamd/v1/status", { unix: socket, signal: AbortSignal.timeout(2000) });
  return res.status;
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe("a second ipamd serve against a stalled daemon", () => {
  test("on the same store: it exits saying a daemon serves that store, and never removes the live socket", async () => {
    const first = await startDaemon();
    first.proc.kill("SIGSTOP"); // stalled: it cannot answer the second one's probe
    onCleanup(() => void first.proc.kill("SIGCONT"));
    const second = await serve(["serve", "--socket", first.socket, "--db", first.db]);
    first.proc.kill("SIGCONT");
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toContain(`a daemon already serves store ${first.db}`);
    expect(existsSync(first.socket)).toBe(true);
    expect(await status(first.socket)).toBe(200);
  }, 30_000);

  test("on another store: the socket's owner still holds its lock, so the socket stays", async () => {
    const first = await startDaemon();
    first.proc.kill("SIGSTOP");
    onCleanup(() => void first.proc.kill("SIGCONT"));
    const second = await serve(["serve", "--socket", first.socket, "--db", join(tempDir(), "other.db")]);
    first.proc.kill("SIGCONT");
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toContain(`another ipamd is already serving ${first.socket}`);
    expect(existsSync(first.socket)).toBe(true);
    expect(await status(first.socket)).toBe(200);
  }, 30_000);
});

describe("the store's files are private", () => {
  test("created under umask 022 in an existing 0755 directory, the db, -wal and -shm are 0600", async () => {
    const dir = tempDir();
    const dbDir = join(dir, "lib");
    mkdirSync(dbDir, { mode: 0o755 });
    chmodSync(dbDir, 0o755);
    const db = join(dbDir, "ipamd.db");
    const daemon = await startDaemon({ dir, args: ["--db", db], umask: 0o022 });
    // An ADD makes sure the WAL has been written to, not only created.
    const add = await fetch("http://ipamd/v1/cni/add", {
      unix: daemon.socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ network: "modes", containerID: "c1", ifname: "eth0", ranges: [[{ subnet: "10.61.0.0/24" }]] }),
    });
    expect(add.status).toBe(200);
    // In exclusive locking mode SQLite keeps the WAL index in memory: a -shm file may not exist.
    expect([db, `${db}-wal`].every(existsSync)).toBe(true);
    for (const file of [db, `${db}-wal`, `${db}-shm`].filter(existsSync)) {
      expect({ file, mode: mode(file).toString(8) }).toEqual({ file, mode: "600" });
    }
  }, 20_000);

  test("an existing world-readable db and its -wal/-shm are tightened to 0600 at start", async () => {
    const dir = tempDir();
    const first = await startDaemon({ dir });
    expect(await first.stop()).toBe(0);
    // As an older ipamd (or a restore from backup) left them.
    for (const file of [first.db, `${first.db}-wal`, `${first.db}-shm`]) {
      if (!existsSync(file)) writeFileSync(file, "");
      chmodSync(file, 0o644);
    }
    await startDaemon({ dir });
    for (const file of [first.db, `${first.db}-wal`, `${first.db}-shm`]) {
      if (existsSync(file)) expect({ file, mode: mode(file).toString(8) }).toEqual({ file, mode: "600" });
    }
    expect(mode(first.db)).toBe(0o600);
  }, 20_000);
});
