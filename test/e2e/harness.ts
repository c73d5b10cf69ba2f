/**
 * End-to-end harness: runs the compiled binary (dist/ipamd) as the daemon and as the plugin,
 * exactly as kubelet's runtime and systemd would. Every daemon and temp dir a test starts is
 * registered here and removed by cleanup(), which tests call from afterEach/afterAll so a
 * failing test leaves nothing behind.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const BINARY = resolve(import.meta.dir, "../../dist/ipamd");
export const DIST_DIR = resolve(import.meta.dir, "../../dist");

const cleanups: (() => void | Promise<void>)[] = [];

export function onCleanup(fn: () => void | Promise<void>): void {
  cleanups.push(fn);
}

export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch {
      // keep cleaning: one failure must not leave the rest behind
    }
  }
}

export function tempDir(prefix = "ipamd-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Daemon {
  socket: string;
  db: string;
  dir: string;
  proc: Subprocess;
  stderr(): string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number>;
  kill9(): Promise<void>;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Whether the daemon answers STATUS (anyStatus: with any answer, "not available" included). */
async function answers(socket: string, anyStatus = false): Promise<boolean> {
  try {
    const res = await fetch("http://ipamd/v1/status", { unix: socket, signal: AbortSignal.timeout(500) });
    return res.ok || anyStatus;
  } catch {
    return false;
  }
}

/** Starts `dist/ipamd serve` on a private socket and database; waits until it answers. */
/** unavailable: also ready when it answers STATUS with "not available" (a store it cannot write). */
export async function startDaemon(options: { dir?: string; args?: string[]; env?: Record<string, string>; umask?: number; unavailable?: boolean; binary?: string } = {}): Promise<Daemon> {
  const dir = options.dir ?? tempDir();
  const socket = join(dir, "ipamd.sock");
  const db = join(dir, "ipamd.db");
  let stderrText = "";
  const argv = [options.binary ?? BINARY, "serve", "--socket", socket, "--db", db, ...(options.args ?? [])];
  // A umask is set by a shell around the exec, as a unit's or a container's shell would.
  const command = options.umask === undefined ? argv : ["sh", "-c", `umask ${options.umask.toString(8)}; exec "$0" "$@"`, ...argv];
  const proc = Bun.spawn(command, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
  });
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) stderrText += decoder.decode(chunk);
  })();
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  });
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}: ${stderrText}`);
    return answers(socket, options.unavailable);
  }, 10_000, "the daemon to answer");
  return {
    socket,
    db,
    dir,
    proc,
    stderr: () => stderrText,
    async stop() {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** A loopback TCP port that was free a moment ago (the kernel picked it). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/**
 * startDaemon with `--admin-listen 127.0.0.1:PORT` on a free port. Another process may take
 * the port between the probe and the daemon's bind; the daemon then exits saying so, and
 * another port is tried.
 */
export async function startDaemonWithAdmin(
  options: { dir?: string; args?: string[]; env?: Record<string, string>; pickPort?: () => number } = {},
): Promise<Daemon & { port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = (options.pickPort ?? freePort)();
    try {
      const daemon = await startDaemon({ ...options, args: [...(options.args ?? []), "--admin-listen", `127.0.0.1:${port}`] });
      return { ...daemon, port };
    } catch (err) {
      if (attempt >= 5 || !/port \d+ in use/.test(String(err))) throw err;
    }
  }
}

export interface PluginRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty. */
  json: any;
}

export interface PluginEnv {
  CNI_COMMAND: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_PATH?: string;
  CNI_ARGS?: string;
  [key: string]: string | undefined;
}

/**
 * Executes the binary as a CNI plugin with the given env and stdin. With `timeoutMs` a plugin
 * still running then is killed (SIGKILL), so a hang fails the test instead of stalling it.
 */
export async function runPlugin(env: PluginEnv, stdin: string | object, binary = BINARY, timeoutMs?: number): Promise<PluginRun> {
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  const cleanEnv: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  const limit = timeoutMs === undefined ? {} : { timeout: timeoutMs, killSignal: "SIGKILL" as const };
  const proc = Bun.spawn([binary], { stdin: new Blob([input]), stdout: "pipe", stderr: "pipe", env: cleanEnv, ...limit });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  let json: any;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { exitCode, stdout, stderr, json };
}

/** A netconf as a runtime would pass it, pointing at the daemon's socket. */
export function netconf(socket: string, ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, cniVersion = "1.0.0"): Record<string, unknown> {
  return {
    cniVersion,
    name: "testnet",
    type: "ipamd",
    ipam: { type: "ipamd", socket, ranges: [[{ subnet: "10.20.0.0/24" }]], ...ipam },
    ...extra,
  };
}

/** The env of an ADD/DEL/CHECK for one attachment. */
export function attachmentEnv(command: string, containerID: string, ifname = "eth0", more: Partial<PluginEnv> = {}): PluginEnv {
  return { CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: `/var/run/netns/${containerID}`, CNI_IFNAME: ifname, CNI_PATH: DIST_DIR, ...more };
}
