/**
 * Reading `ipam.resolvConf`, on the plugin's host. Only a regular file of at most 64 KiB is
 * read: opening a FIFO blocks until a writer comes (the pod start would hang) and a device such
 * as /dev/zero never ends. So stat comes first (it follows symlinks, as /etc/resolv.conf often
 * is one, and opens nothing), then at most one byte past the limit is read. Bun.file() needs no
 * node:fs import, which would load on every exec (DESIGN.md, the hot path); no schema either,
 * so the forwarding plugin can call it before it decides whether to load anything more.
 */
import type { Stats } from "node:fs";

/** A resolv.conf is a few hundred bytes; host-local's 64 KiB bound keeps a mistake from costing memory. */
export const MAX_RESOLV_CONF_BYTES = 64 * 1024;

/** Why a resolvConf cannot be read, in the words that follow "cannot read resolvConf PATH: ". */
export class ResolvConfProblem extends Error {}

export async function readResolvConf(path: string): Promise<string> {
  let bytes: ArrayBuffer;
  try {
    const file = Bun.file(path);
    const info = await file.stat();
    if (!info.isFile()) throw new ResolvConfProblem(`not a regular file (${kindOf(info)})`);
    if (info.size > MAX_RESOLV_CONF_BYTES) throw new ResolvConfProblem(`over ${MAX_RESOLV_CONF_BYTES} bytes`);
    bytes = await file.slice(0, MAX_RESOLV_CONF_BYTES + 1).arrayBuffer();
  } catch (err) {
    if (err instanceof ResolvConfProblem) throw err;
    throw new ResolvConfProblem((err as { code?: string }).code === "ENOENT" ? "does not exist" : (err as Error).message);
  }
  if (bytes.byteLength > MAX_RESOLV_CONF_BYTES) throw new ResolvConfProblem(`over ${MAX_RESOLV_CONF_BYTES} bytes`); // it grew since stat
  return new TextDecoder().decode(bytes);
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return "a directory";
  if (info.isFIFO()) return "a FIFO";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isSocket()) return "a socket";
  return "an unknown kind of file";
}
