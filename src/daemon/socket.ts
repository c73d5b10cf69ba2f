/**
 * Who owns the daemon's socket. A running daemon holds an exclusive flock(2) on SOCKET.lock for
 * its whole life; the kernel drops it when the process dies, however it dies. So a socket file
 * whose lock nobody holds was left by a crash and may go, and one whose lock is held belongs to
 * a live daemon — even a stalled one (SIGSTOP, a long burst) that cannot answer a probe in
 * time. Only a lock tells these apart; a probe with a timeout cannot.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { Paths } from "../protocol.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;

/** flock(2) from libc, loaded lazily: bun:ffi must never load on the plugin's path. */
async function flock(fd: number, operation: number): Promise<boolean> {
  const { dlopen, FFIType } = await import("bun:ffi");
  const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  try {
    return libc.symbols.flock(fd, operation) === 0;
  } finally {
    libc.close();
  }
}

/** Whether a daemon answers on this socket right now (an ipamd from before the lock existed). */
async function answers(socket: string): Promise<boolean> {
  try {
    const res = await fetch(`http://ipamd${Paths.status}`, { unix: socket, signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export interface SocketClaim {
  /** Lets the lock go (the daemon is stopping; the socket file is already gone). */
  release(): Promise<void>;
}

/**
 * Makes the socket's private directory, takes the socket's lock and removes a socket file left
 * by a crash. Refuses (code 5) when another daemon holds the lock or the path is not a socket.
 */
export async function claimSocket(socket: string): Promise<SocketClaim> {
  const { mkdir, chmod, unlink, lstat } = await import("node:fs/promises");
  const { openSync, closeSync } = await import("node:fs");
  const { dirname } = await import("node:path");
  const dir = dirname(socket);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (dir.startsWith("/run/") || dir === "/run") await chmod(dir, 0o700);
  const lockPath = `${socket}.lock`;
  const fd = openSync(lockPath, "a", 0o600);
  if (!(await flock(fd, LOCK_EX | LOCK_NB))) {
    closeSync(fd);
    throw new IpamError(ErrorCode.IoFailure, `another ipamd is already serving ${socket} (it holds ${lockPath})`);
  }
  const release = async () => closeSync(fd); // closing the last descriptor drops the flock
  try {
    const existing = await lstat(socket).catch(() => null);
    if (existing) {
      if (!existing.isSocket()) throw new IpamError(ErrorCode.IoFailure, `${socket} exists and is not a socket; refusing to replace it`);
      if (await answers(socket)) throw new IpamError(ErrorCode.IoFailure, `another ipamd is already serving ${socket}`);
      await unlink(socket); // nobody holds its lock: left behind by a daemon that crashed
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { release };
}
