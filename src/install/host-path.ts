/**
 * `--host-root`: the host's filesystem mounted in the installer's container. A symlink in it
 * was made for the host, but it is this container's kernel that follows it when we write:
 * an absolute link (/host/opt/cni/bin -> /usr/bin) leads to the container's own /usr/bin,
 * and a relative one with enough ".." climbs out of the mount. Either way a write, chmod or
 * remove would land outside the host root, in the container (lost) or in whatever else is
 * mounted there. So every component of a target that exists is resolved here, link by link,
 * and a link leading outside is refused with what it means on the host, so the operator can
 * name that directory instead. Links that stay inside resolve the same way for host and
 * container and are followed.
 */

/** Linux's own limit on links followed while resolving one path (ELOOP). */
const MAX_LINKS = 40;

export class HostPathError extends Error {}

/** Throws HostPathError when resolving `target` (a path under `hostRoot`) would leave `hostRoot`. */
export async function checkUnderHostRoot(hostRoot: string, target: string): Promise<void> {
  const { lstat, readlink } = await import("node:fs/promises");
  const { isAbsolute, join, relative } = await import("node:path");
  const rel = relative(hostRoot, target);
  if (rel === ".." || rel.startsWith("../")) throw new HostPathError(`${target} is not under the host root ${hostRoot}`);
  // Components still to resolve, each with the link whose text it came from (for the message).
  type Via = { path: string; link: string } | undefined;
  const pending: { name: string; via: Via }[] = rel.split("/").map((name) => ({ name, via: undefined }));
  const resolved: string[] = []; // below hostRoot, real directories only: ".." is exact here
  let links = 0;
  while (pending.length > 0) {
    const { name, via } = pending.shift()!;
    if (name === "" || name === ".") continue;
    if (name === "..") {
      // The target itself is normalized, so a ".." comes from a link's text.
      if (resolved.length === 0) throw new HostPathError(`${via!.path} is a symlink to ${via!.link}, which leads outside the host root ${hostRoot}; refusing to follow it`);
      resolved.pop();
      continue;
    }
    const path = join(hostRoot, ...resolved, name);
    const info = await lstat(path).catch(() => null);
    if (!info?.isSymbolicLink()) {
      resolved.push(name); // a directory, the file itself, or not there yet (mkdir makes no links)
      continue;
    }
    if (++links > MAX_LINKS) throw new HostPathError(`${target}: too many levels of symbolic links under the host root ${hostRoot}`);
    const link = await readlink(path);
    if (isAbsolute(link)) {
      throw new HostPathError(
        `${path} is a symlink to ${link}, which this container resolves outside the host root ${hostRoot} (the host means ${join(hostRoot, link)}); refusing to follow it: name the real directory instead`,
      );
    }
    pending.unshift(...link.split("/").map((part) => ({ name: part, via: { path, link } })));
  }
}
