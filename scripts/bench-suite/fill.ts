/**
 * Filling: ipamd through its admin import (POST /v1/import, 10,000 entries per call: the
 * daemon's index, the store's group commit and every invariant, no SQL by hand), host-local
 * by writing its data dir in its own format.
 *
 * Allocation i is at SUBNET_BASE + 65536 + 2i: a free address after each one, so the daemon's
 * index holds one extent per allocation — the worst case for its memory and depth, not the
 * best (a contiguous run would be a single node). Addresses below the fill are left to the
 * samples.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { call, ipOf, NETWORK, RANGES, SUBNET_BASE, tmp } from "./common.ts";

const FIRST = SUBNET_BASE + 65_536;
const BATCH = 10_000;
export const fillAddress = (i: number) => ipOf(FIRST + 2 * i);

let filled = 0;

interface ImportResponse { imported: number; unchanged: number; conflicts: unknown[] }

/** Brings ipamd's fill to `target` live allocations; returns the seconds it took. */
export async function fillTo(target: number): Promise<number> {
  const started = performance.now();
  while (filled < target) {
    const count = Math.min(BATCH, target - filled);
    const entries = Array.from({ length: count }, (_, k) => ({ ip: fillAddress(filled + k), containerID: `fill-${filled + k}`, ifname: "eth0" }));
    const res = await call<ImportResponse>("/v1/import", {
      network: NETWORK,
      ranges: RANGES,
      entries,
      // As host-local's last_reserved_ip: ADDs continue after the fill.
      cursors: [{ rangeSet: 0, ip: fillAddress(filled + count - 1) }],
    });
    if (res.imported !== count) throw new Error(`import: ${res.imported} of ${count} imported, ${res.conflicts.length} conflicts: ${JSON.stringify(res.conflicts.slice(0, 3))}`);
    filled += count;
  }
  return (performance.now() - started) / 1000;
}

/**
 * host-local's data dir holding the same `count` addresses: one file per address named by it,
 * holding "containerID\r\nifname", plus last_reserved_ip.0 — byte for byte what its own ADDs
 * leave behind (checked against a real ADD in test/e2e/operations.test.ts's import test).
 * Filling through host-local's ADDs takes ~11 minutes at 10k, because each ADD scans the whole
 * dir under a lock: the very cost this benchmark measures.
 */
export function fillHostLocal(count: number): string {
  const dataDir = join(tmp, "host-local");
  const dir = join(dataDir, NETWORK);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(dir, fillAddress(i)), `fill-${i}\r\neth0`);
  writeFileSync(join(dir, "last_reserved_ip.0"), fillAddress(count - 1));
  return dataDir;
}
