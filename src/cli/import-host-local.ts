/**
 * Reads a host-local data dir (/var/lib/cni/networks/NAME): one file per address, named by
 * the address, holding the container ID and (since CNI 0.7) the interface name on a second
 * line; `last_reserved_ip.N` holds where range set N continues; `lock` is host-local's lock.
 */
import type { ImportRequest } from "../protocol-admin.ts";
import { canonicalIp } from "../ipam/address.ts";

export interface HostLocalDir {
  entries: ImportRequest["entries"];
  cursors: NonNullable<ImportRequest["cursors"]>;
  skipped: string[];
}

export async function readHostLocalDir(dir: string): Promise<HostLocalDir> {
  const { readdir, readFile } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const result: HostLocalDir = { entries: [], cursors: [], skipped: [] };
  for (const name of (await readdir(dir)).sort()) {
    if (name === "lock") continue;
    const text = (await readFile(join(dir, name), "utf8")).trim();
    const cursor = /^last_reserved_ip\.(\d+)$/.exec(name);
    if (cursor) {
      const ip = canonicalIp(text);
      if (ip) result.cursors.push({ rangeSet: Number(cursor[1]), ip });
      continue;
    }
    const ip = canonicalIp(name);
    const [containerID, ifname] = text.split(/\r?\n/).map((s) => s.trim());
    if (!ip || !containerID) {
      result.skipped.push(name);
      continue;
    }
    result.entries.push({ ip, containerID, ifname: ifname || "eth0" });
  }
  return result;
}
