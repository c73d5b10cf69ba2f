/**
 * Filling: ipamd through its admin import (POST /v1/import, 10,000 entries per call: the
 * daemon's index, the store's group commit and every invariant, no SQL by hand), host-local
 * by writing its data dir in its own format, checked against host-local itself first.
 *
 * Allocation i is at SUBNET_BASE + 65536 + 2i: a free address after each one, so the daemon's
 * index holds one extent per allocation — the worst case for its memory and depth, not the
 * best (a contiguous run would be a single node). Addresses below the fill are left to the
 * samples.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { call, HOST_LOCAL, ipOf, NETWORK, RANGES, SUBNET_BASE, socket, tmp } from "./common.ts";

const FIRST = SUBNET_BASE + 65_536;
const BATCH = 10_000;
export const fillAddress = (i: number) => ipOf(FIRST + 2 * i);

/** How far each daemon (by socket) is filled. */
const filledOf = new Map<string, number>();

interface ImportResponse { imported: number; unchanged: number; conflicts: unknown[] }

/** Brings ipamd's fill to `target` live allocations; returns the seconds it took. */
export async function fillTo(target: number, unix = socket): Promise<number> {
  const started = performance.now();
  let filled = filledOf.get(unix) ?? 0;
  while (filled < target) {
    const count = Math.min(BATCH, target - filled);
    const entries = Array.from({ length: count }, (_, k) => ({ ip: fillAddress(filled + k), containerID: `fill-${filled + k}`, ifname: "eth0" }));
    const res = await call<ImportResponse>("/v1/import", {
      network: NETWORK,
      ranges: RANGES,
      entries,
      // As host-local's last_reserved_ip: ADDs continue after the fill.
      cursors: [{ rangeSet: 0, ip: fillAddress(filled + count - 1) }],
    }, unix);
    if (res.imported !== count) throw new Error(`import: ${res.imported} of ${count} imported, ${res.conflicts.length} conflicts: ${JSON.stringify(res.conflicts.slice(0, 3))}`);
    filled += count;
    filledOf.set(unix, filled);
  }
  return (performance.now() - started) / 1000;
}

/** Writes host-local's data dir entries for fill addresses 0 … count-1 into `dir`. */
function writeHostLocalEntries(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(dir, fillAddress(i)), `fill-${i}\r\neth0`);
  writeFileSync(join(dir, "last_reserved_ip.0"), fillAddress(count - 1));
}

/** Every file of a dir but host-local's lock (it creates that itself on its first run): name → bytes. */
function files(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).filter((f) => f !== "lock").sort().map((f) => [f, readFileSync(join(dir, f))]));
}

/**
 * Checks the synthetic format against host-local itself: `count` entries written by
 * writeHostLocalEntries and a data dir that Debian's host-local fills with its own ADDs of
 * the same addresses (each requested with CNI_ARGS IP=, same container IDs) must hold the
 * same files, byte for byte. Throws, naming the first difference, if they do not.
 */
export async function checkHostLocalFormat(count = 5): Promise<void> {
  const synthetic = join(tmp, "host-local-check", "synthetic");
  const realDataDir = join(tmp, "host-local-check", "real");
  writeHostLocalEntries(synthetic, count);
  const netconf = JSON.stringify({ cniVersion: "1.0.0", name: NETWORK, ipam: { type: "host-local", dataDir: realDataDir, ranges: RANGES } });
  for (let i = 0; i < count; i++) {
    const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: `fill-${i}`, CNI_NETNS: `/var/run/netns/fill-${i}`, CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni", CNI_ARGS: `IgnoreUnknown=1;IP=${fillAddress(i)}` };
    const proc = Bun.spawn([HOST_LOCAL], { stdin: new Blob([netconf]), stdout: "pipe", stderr: "pipe", env });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    if (code !== 0 || !out.includes(`"${fillAddress(i)}/`)) throw new Error(`host-local ADD of ${fillAddress(i)} failed (exit ${code}): ${out.trim()}`);
  }
  const [ours, theirs] = [files(synthetic), files(join(realDataDir, NETWORK))];
  const names = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
  for (const name of names) {
    const [a, b] = [ours.get(name), theirs.get(name)];
    if (!a || !b || !a.equals(b)) {
      throw new Error(`the synthetic host-local fill differs from host-local's own at ${name}: ours ${JSON.stringify(a?.toString() ?? null)}, host-local's ${JSON.stringify(b?.toString() ?? null)}`);
    }
  }
}

/**
 * host-local's data dir holding the same `count` addresses: one file per address named by it,
 * holding "containerID\r\nifname", plus last_reserved_ip.0 — byte for byte what its own ADDs
 * leave behind, which checkHostLocalFormat() proves against host-local before every fill.
 * Filling through host-local's ADDs takes ~11 minutes at 10k, because each ADD scans the whole
 * dir under a lock: the very cost this benchmark measures.
 */
export async function fillHostLocal(count: number): Promise<string> {
  await checkHostLocalFormat();
  const dataDir = join(tmp, "host-local");
  writeHostLocalEntries(join(dataDir, NETWORK), count);
  return dataDir;
}
