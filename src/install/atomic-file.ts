/**
 * Putting a file in place so that nobody ever sees half of it: the new content goes to a
 * temporary file in the target's own directory (same filesystem, so rename is atomic), is
 * fsynced, gets its mode, and is renamed over the target; then the directory is fsynced so
 * the rename survives a crash. A runtime exec'ing the plugin during an upgrade gets either
 * the old inode or the new one, both complete. Identical content is not rewritten at all,
 * so a re-install changes neither the inode nor the mtime. A run killed before its rename
 * leaves its temporary file behind; the next run removes it first (removeLeftovers).
 */

/** What to put in place: bytes in memory, or a copy of another file (the running binary). */
export type Content = { bytes: Uint8Array } | { copyOf: string };

export interface PlaceResult {
  path: string;
  /** "written": new or changed content; "mode": same content, mode corrected; "unchanged": nothing done. */
  outcome: "written" | "mode" | "unchanged";
  bytes: number;
}

const TEMP_MARK = ".ipamd-tmp-";

/** `.NAME.ipamd-tmp-PID-RANDOM` beside NAME: hidden from a runtime's directory scan, and ours by name. */
const tempName = (base: string) => `.${base}${TEMP_MARK}${process.pid}-${crypto.randomUUID().slice(0, 8)}`;

function isTempName(name: string, base: string): boolean {
  const prefix = `.${base}${TEMP_MARK}`;
  return name.startsWith(prefix) && /^\d+-[0-9a-f]{8}$/.test(name.slice(prefix.length));
}

async function sizeOf(content: Content): Promise<number> {
  if ("bytes" in content) return content.bytes.byteLength;
  const { stat } = await import("node:fs/promises");
  return (await stat(content.copyOf)).size;
}

/** Whether the file at `path` holds exactly `content`, compared in 1 MiB chunks. */
export async function holds(path: string, content: Content): Promise<boolean> {
  const { open, stat } = await import("node:fs/promises");
  const existing = await stat(path).catch(() => null);
  if (!existing?.isFile() || existing.size !== (await sizeOf(content))) return false;
  if ("bytes" in content) return Buffer.from(await Bun.file(path).arrayBuffer()).equals(content.bytes);
  const [a, b] = await Promise.all([open(path, "r"), open(content.copyOf, "r")]);
  try {
    const bufA = Buffer.allocUnsafe(1 << 20);
    const bufB = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < existing.size; ) {
      const [ra, rb] = await Promise.all([a.read(bufA, 0, bufA.length, pos), b.read(bufB, 0, bufB.length, pos)]);
      if (ra.bytesRead === 0 || ra.bytesRead !== rb.bytesRead) return false;
      if (!bufA.subarray(0, ra.bytesRead).equals(bufB.subarray(0, rb.bytesRead))) return false;
      pos += ra.bytesRead;
    }
    return true;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const { open } = await import("node:fs/promises");
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Removes the temporary files an install killed before its rename left beside `target`
 * (each up to the binary's size); with `dryRun` only lists them. Only regular files named by
 * our own pattern for this very target: never a symlink or a directory, never another name.
 * Any such file is a leftover, whatever its age: a live install renames or removes its temp
 * before it exits, and two installers racing for one target are not supported (if one did
 * run, removing its temp makes its rename fail loudly; no target is ever half-written).
 */
export async function removeLeftovers(target: string, dryRun: boolean): Promise<string[]> {
  const { lstat, readdir, rm } = await import("node:fs/promises");
  const { basename, dirname, join } = await import("node:path");
  const dir = dirname(target);
  const base = basename(target);
  const found: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!isTempName(name, base)) continue;
    const path = join(dir, name);
    if (!(await lstat(path).catch(() => null))?.isFile()) continue;
    if (!dryRun) await rm(path, { force: true });
    found.push(path);
  }
  if (found.length > 0 && !dryRun) await fsyncDir(dir);
  return found;
}

/**
 * Makes `target` hold `content` with `mode`, atomically; creates the directory (0755) if
 * missing. With `dryRun` it only says what it would do.
 */
export async function placeFile(target: string, content: Content, mode: number, dryRun: boolean): Promise<PlaceResult> {
  const { chmod, copyFile, mkdir, open, rename, rm, stat, writeFile } = await import("node:fs/promises");
  const { basename, dirname, join } = await import("node:path");
  const bytes = await sizeOf(content);
  if (await holds(target, content)) {
    const current = (await stat(target)).mode & 0o7777;
    if (current === mode) return { path: target, outcome: "unchanged", bytes };
    if (!dryRun) await chmod(target, mode);
    return { path: target, outcome: "mode", bytes };
  }
  if (dryRun) return { path: target, outcome: "written", bytes };

  const dir = dirname(target);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const temp = join(dir, tempName(basename(target)));
  try {
    if ("bytes" in content) await writeFile(temp, content.bytes, { flag: "wx", mode: 0o600 });
    else await copyFile(content.copyOf, temp);
    // Every writable descriptor is closed before the rename: exec'ing a file that is open
    // for writing fails with ETXTBSY.
    const handle = await open(temp, "r+");
    try {
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
  return { path: target, outcome: "written", bytes };
}

/** Removes `target` if it exists (and fsyncs its directory); false when there was nothing. */
export async function removeFile(target: string, dryRun: boolean): Promise<boolean> {
  const { lstat, rm } = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  const existing = await lstat(target).catch(() => null);
  if (!existing) return false;
  if (dryRun) return true;
  await rm(target, { force: true });
  await fsyncDir(dirname(target));
  return true;
}
