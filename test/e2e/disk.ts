/** Real small file systems for storage tests: a tmpfs of a given size, filled on demand. */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { onCleanup, tempDir } from "./harness.ts";
import { mustRun, requireRootAndTools, run } from "./netns.ts";

/** A tmpfs of `size` (e.g. "2m") mounted on a temp dir, unmounted by cleanup even when the test fails. */
export async function smallDisk(size: string): Promise<string> {
  requireRootAndTools(["mount", "umount"]);
  const dir = join(tempDir(), "disk");
  mkdirSync(dir);
  await mustRun(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  onCleanup(async () => {
    await run(["umount", "-l", dir]);
  });
  return dir;
}

/** Gives a mounted tmpfs a new size, live (the daemon on it keeps running). */
export async function resizeDisk(dir: string, size: string): Promise<void> {
  await mustRun(["mount", "-o", `remount,size=${size}`, dir]);
}

/** Fills the file system with one file until it refuses more; returns the file. */
export function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}
