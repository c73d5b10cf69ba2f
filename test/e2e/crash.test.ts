/**
 * Durable before acknowledged (DESIGN.md rule 4): while 8 workers stream plugin ADDs, the
 * daemon is frozen at an arbitrary point and killed with SIGKILL once ADDs wait on it (see
 * kill-stream.ts). Every ADD that exited 0 must survive:
 * after a restart on the same database the same container gets the same address back and
 * CHECK passes; no address is ever held twice. ADDs caught in flight must fail with code 11
 * (try again later), never succeed with a made-up answer. Three kill/restart cycles.
 */
import { Database } from "bun:sqlite";
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, cleanup, netconf, runPlugin, startDaemon, tempDir } from "./harness.ts";
import { type Acknowledged, streamUntilKilled } from "./kill-stream.ts";

afterEach(cleanup);
afterAll(cleanup);

const WORKERS = 8;
const CYCLES = 3;
const SUBNET = "10.50.0.0/16";

/** Deterministic per run, different per cycle: the kill lands after 150–300 acknowledged ADDs. */
function killPoint(cycle: number): number {
  return 150 + ((process.pid * 7919 + cycle * 104_729) % 151);
}

/** ADDs that must be waiting at the frozen daemon when it is killed (see kill-stream.ts). */
const IN_FLIGHT = WORKERS / 2;

/** Opens a copy of the database as the crash left it (db + WAL), so the check cannot change what the daemon recovers. */
function crashedCopy(db: string): Database {
  const dir = tempDir("ipamd-crash-copy-");
  const copy = join(dir, "ipamd.db");
  copyFileSync(db, copy);
  if (existsSync(`${db}-wal`)) copyFileSync(`${db}-wal`, `${copy}-wal`);
  return new Database(copy);
}

/** The invariants of the allocations table against what the plugin acknowledged. */
function checkTable(db: Database, network: string, acknowledged: Acknowledged[]): void {
  try {
    const duplicates = db.query("SELECT ip, COUNT(*) AS n FROM allocations GROUP BY network, ip HAVING COUNT(*) > 1").all();
    expect(duplicates).toEqual([]);
    const twoAddresses = db.query("SELECT container_id, COUNT(*) AS n FROM allocations WHERE network = ? GROUP BY container_id, ifname HAVING COUNT(*) > 1").all(network);
    expect(twoAddresses).toEqual([]);
    const held = new Map(
      (db.query("SELECT container_id, ip FROM allocations WHERE network = ? AND ifname = 'eth0'").all(network) as { container_id: string; ip: string }[]).map((r) => [r.container_id, r.ip]),
    );
    const lost = acknowledged.filter((a) => held.get(a.containerID) !== a.address.split("/")[0]).map((a) => `${a.containerID} ${a.address} (table has ${held.get(a.containerID) ?? "nothing"})`);
    expect(lost).toEqual([]);
  } finally {
    db.close();
  }
}

/** Runs fn over items with at most `limit` at a time. */
async function pooled<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}

describe("kill -9 in the middle of a stream of ADDs", () => {
  test(`${CYCLES} cycles: nothing acknowledged is lost or moved, in-flight ADDs fail with code 11, no address is held twice`, async () => {
    const network = `crash-${process.pid}`;
    let daemon = await startDaemon();
    const { dir, socket } = daemon;
    // The socket path stays the same across restarts (same dir), so one netconf serves them all.
    const conf = { ...netconf(socket, { ranges: [[{ subnet: SUBNET }]] }), name: network };
    const all: Acknowledged[] = [];

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const { acknowledged, failed, queuedAtKill } = await streamUntilKilled(daemon, conf, {
        id: (w, i) => `crash-${process.pid}-c${cycle}-w${w}-${i}`,
        workers: WORKERS,
        killAfter: killPoint(cycle),
        inFlight: IN_FLIGHT,
      });
      expect(daemon.proc.signalCode).toBe("SIGKILL");
      // The kill met both sets: acknowledged ADDs, and ADDs it left unanswered.
      expect(acknowledged.length).toBeGreaterThanOrEqual(killPoint(cycle));
      expect(queuedAtKill).toBeGreaterThanOrEqual(IN_FLIGHT);
      expect(failed.length).toBeGreaterThanOrEqual(queuedAtKill); // each queued ADD failed

      // Every success is a real, well-formed answer in the pool.
      const malformed = acknowledged.filter((a) => !/^10\.50\.\d+\.\d+\/16$/.test(a.address ?? ""));
      expect(malformed).toEqual([]);
      // Every failure is "try again later", as the runtime needs to retry.
      const notRetryable = failed.filter((f) => f.run.json?.code !== 11).map((f) => `${f.containerID}: exit ${f.run.exitCode} ${f.run.stdout}${f.run.stderr}`);
      expect(notRetryable).toEqual([]);

      all.push(...acknowledged);
      expect(new Set(all.map((a) => a.address)).size).toBe(all.length); // never handed out twice, across restarts

      // The database as the crash left it already holds every acknowledged allocation.
      checkTable(crashedCopy(daemon.db), network, all);

      // A plugin run while the daemon is down is "try again later", too.
      const down = await runPlugin(attachmentEnv("ADD", `crash-${process.pid}-c${cycle}-down`), conf);
      expect(down.exitCode).not.toBe(0);
      expect(down.json?.code).toBe(11);

      daemon = await startDaemon({ dir });
      expect(daemon.socket).toBe(socket);

      // After the restart: the same container gets the same address, and CHECK agrees.
      const readds = await pooled(all, WORKERS, (a) => runPlugin(attachmentEnv("ADD", a.containerID), conf));
      const moved = readds.map((r, i) => ({ r, a: all[i]! })).filter(({ r, a }) => r.exitCode !== 0 || r.json?.ips?.[0]?.address !== a.address);
      expect(moved.map(({ r, a }) => `${a.containerID}: had ${a.address}, now ${r.stdout.trim()}`)).toEqual([]);
      const checks = await pooled(all, WORKERS, (a) => runPlugin(attachmentEnv("CHECK", a.containerID), { ...conf, prevResult: a.result }));
      const failedChecks = checks.map((r, i) => ({ r, a: all[i]! })).filter(({ r }) => r.exitCode !== 0);
      expect(failedChecks.map(({ r, a }) => `${a.containerID}: ${r.stdout.trim()}`)).toEqual([]);

      // The runtime retries what failed with code 11: each retry succeeds, with an address of its own
      // (the one the daemon committed before dying, if it got that far, or a fresh one).
      const retries = await pooled(failed, WORKERS, (f) => runPlugin(attachmentEnv("ADD", f.containerID), conf));
      expect(retries.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
      all.push(...retries.map((r, i) => ({ containerID: failed[i]!.containerID, address: r.json.ips[0].address as string, result: r.json })));
      expect(new Set(all.map((a) => a.address)).size).toBe(all.length);
    }

    // New ADDs after the last restart never collide with anything held.
    const fresh = await pooled(Array.from({ length: 50 }, (_, i) => `crash-${process.pid}-fresh-${i}`), WORKERS, (id) => runPlugin(attachmentEnv("ADD", id), conf));
    expect(fresh.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
    const taken = new Set(all.map((a) => a.address));
    expect(fresh.filter((r) => taken.has(r.json.ips[0].address)).map((r) => r.json.ips[0].address)).toEqual([]);
    expect(new Set(fresh.map((r) => r.json.ips[0].address)).size).toBe(50);

    // Stopped cleanly, the database opens read-only and tells the same story.
    expect(await daemon.stop()).toBe(0);
    checkTable(new Database(daemon.db, { readonly: true }), network, all);
  }, 180_000);
});
