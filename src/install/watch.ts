/**
 * `install --wait`: install, then stay and install again whenever the netconf source changes
 * or an installed file is touched by someone else (deleted, replaced). A ConfigMap volume
 * updates by swapping its `..data` symlink, which replaces the file under a stable path, so
 * the source's directory is watched (inotify), with a poll as a safety net for filesystems
 * where events do not arrive. Between changes a pass costs a stat per file and one small
 * read: the 100 MiB binary is compared again only when its inode, size or mtime moved.
 * A bad new netconf is reported and the installed one stays; SIGTERM/SIGINT exit 0.
 */
import type { Content } from "./atomic-file.ts";

interface Item {
  target: string;
}

export interface WatchOptions {
  netconfSource?: string;
  /** One install pass; `skip` says which items are known to be current, `done` records the rest. */
  pass(skip: (item: Item, content: Content) => Promise<boolean>, done: (item: Item, content: Content) => Promise<void>): Promise<void>;
  report(err: unknown): string;
  pollMs?: number;
}

async function identity(path: string): Promise<string | null> {
  const { stat } = await import("node:fs/promises");
  const s = await stat(path).catch(() => null);
  return s ? `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.mode}` : null;
}

const keyOf = (content: Content) => ("bytes" in content ? `bytes:${Buffer.from(content.bytes).toString("base64")}` : `copy:${content.copyOf}`);

/**
 * Install passes one at a time: a change during a pass schedules exactly one more. A failing
 * pass keeps the installed files and says why once (until the reason changes).
 */
function serialisedPasses(options: WatchOptions, skip: Parameters<WatchOptions["pass"]>[0], done: Parameters<WatchOptions["pass"]>[1]): { run: () => Promise<void>; idle: () => Promise<void> } {
  let running = false;
  let again = false;
  let lastError = "";
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      try {
        await options.pass(skip, done);
        lastError = "";
      } catch (err) {
        const msg = options.report(err);
        if (msg !== lastError) process.stderr.write(`ipamd install: ${msg}; the installed files stay as they are\n`);
        lastError = msg;
      }
    } while (again);
    running = false;
  };
  return {
    run,
    idle: async () => {
      while (running) await Bun.sleep(10);
    },
  };
}

export async function watchAndReinstall(options: WatchOptions): Promise<number> {
  const { watch } = await import("node:fs");
  const { dirname } = await import("node:path");
  const installed = new Map<string, { id: string | null; key: string }>();
  const skip = async (item: Item, content: Content) => {
    const last = installed.get(item.target);
    return last !== undefined && last.key === keyOf(content) && last.id === (await identity(item.target));
  };
  const done = async (item: Item, content: Content) => {
    installed.set(item.target, { id: await identity(item.target), key: keyOf(content) });
  };

  try {
    await options.pass(skip, done);
  } catch (err) {
    process.stderr.write(`ipamd install: ${options.report(err)}\n`);
    return 1;
  }
  // Listening for SIGTERM before saying "watching": a stop that follows at once exits 0 too.
  const stopped = new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  process.stdout.write(`watching ${options.netconfSource ?? "the installed files"} for changes\n`);

  const passes = serialisedPasses(options, skip, done);
  const check = passes.run;
  let debounce: Timer | undefined;
  const soon = () => {
    clearTimeout(debounce);
    debounce = setTimeout(check, 100);
  };
  const watcher = options.netconfSource ? watch(dirname(options.netconfSource), soon) : undefined;
  watcher?.on("error", () => undefined); // the poll below still runs
  const poll = setInterval(check, options.pollMs ?? 2000);

  await stopped;
  clearInterval(poll);
  clearTimeout(debounce);
  watcher?.close();
  await passes.idle();
  return 0;
}
