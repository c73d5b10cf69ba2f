/**
 * In-process probe of Engine add-then-del throughput on a real sqlite store (no HTTP),
 * for profiling the daemon's core: `bun --cpu-prof scripts/bench-suite/inproc.ts`.
 *   INPROC_OPS=20000 INPROC_CONCURRENCY=64 [INPROC_DB=path] node_modules/.bin/bun scripts/bench-suite/inproc.ts
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const OPS = Number(process.env.INPROC_OPS ?? 20_000);
const CONCURRENCY = Number(process.env.INPROC_CONCURRENCY ?? 64);
const dir = mkdtempSync(join(tmpdir(), "ipamd-inproc-"));
try {
  // INPROC_DB: a copy of an existing database (say, one holding a million allocations).
  const path = join(dir, "ipamd.db");
  if (process.env.INPROC_DB) copyFileSync(process.env.INPROC_DB, path);
  const store = await SqliteStore.open(path);
  const ipam = await Engine.start(store, { node: "bench" });
  const ranges = [[{ subnet: "10.128.0.0/14" }]];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < OPS) {
      const containerID = `c-${next++}`;
      await ipam.add({ network: "net", containerID, ifname: "eth0", netns: `/var/run/netns/${containerID}`, ranges });
      await ipam.del({ network: "net", containerID, ifname: "eth0" });
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  console.log(`${OPS} add+del at ${CONCURRENCY} concurrent: ${(OPS / seconds).toFixed(0)} add+del/s (${seconds.toFixed(2)} s)`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
