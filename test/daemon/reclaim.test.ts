/**
 * The leak sweep's safety rules (src/daemon/reclaim.ts) on real paths, a real sqlite store
 * and the real Engine, with the sweep's clock injected: a netns path that cannot be
 * read counts as alive; a netns that comes back resets the time it has been missing; and
 * only an absence longer than the grace reclaims.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { Reclaimer } from "../../src/daemon/reclaim.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { cleanup, onCleanup, tempDir } from "../e2e/harness.ts";

afterAll(cleanup);

const ranges = [[{ subnet: "10.81.0.0/24" }]];
const GRACE = 300_000;

async function node() {
  const dir = tempDir("ipamd-reclaim-");
  const netnsDir = join(dir, "netns");
  mkdirSync(netnsDir);
  const store = await SqliteStore.open(join(dir, "ipamd.db"));
  onCleanup(() => store.close());
  const clock = { now: 50_000_000 };
  const ipam = await Engine.start(store, { node: "node-a", now: () => clock.now });
  // The real existence check (no `exists` injected): stat on the path.
  const reclaimer = new Reclaimer(ipam, { graceMs: GRACE, now: () => clock.now, netnsDirs: [netnsDir] });
  const add = (containerID: string, netns: string) => ipam.add({ network: "n", containerID, ifname: "eth0", netns, ranges });
  const held = async () => (await ipam.store.allocations({})).map((r) => r.containerID).sort();
  return { netnsDir, clock, reclaimer, add, held };
}

describe("leak sweep safety", () => {
  test("a netns path that exists but cannot be read (a symlink loop: ELOOP) counts as alive, never reclaimed", async () => {
    const { netnsDir, clock, reclaimer, add, held } = await node();
    const loop = join(netnsDir, "loop");
    symlinkSync(loop, loop);
    await add("unreadable", loop);
    await add("gone", join(netnsDir, "gone")); // the control: truly absent
    clock.now += GRACE;
    expect((await reclaimer.sweep()).pending).toBe(1); // first sight of the absent one
    clock.now += GRACE;
    const swept = await reclaimer.sweep();
    expect(swept.reclaimed.map((r) => r.containerID)).toEqual(["gone"]);
    expect(swept.pending).toBe(0);
    clock.now += 10 * GRACE;
    expect((await reclaimer.sweep()).reclaimed).toEqual([]);
    expect(await held()).toEqual(["unreadable"]);
  }, 30_000);

  test("a netns that comes back resets the time it has been missing", async () => {
    const { netnsDir, clock, reclaimer, add, held } = await node();
    const path = join(netnsDir, "flaky");
    await add("flaky", path);
    clock.now += GRACE; // the allocation is older than the grace from here on
    await reclaimer.sweep(); // missing: first seen now (t0)
    clock.now += 200_000;
    writeFileSync(path, ""); // back
    await reclaimer.sweep();
    clock.now += 50_000;
    rmSync(path); // missing again: first seen at t0 + 250 s
    await reclaimer.sweep();
    clock.now += 150_000; // t0 + 400 s: missing for 150 s this time, not 400 s
    const early = await reclaimer.sweep();
    expect({ reclaimed: early.reclaimed.length, pending: early.pending }).toEqual({ reclaimed: 0, pending: 1 });
    expect(await held()).toEqual(["flaky"]);
    clock.now += 150_000; // t0 + 550 s: missing for 300 s since it went again
    const due = await reclaimer.sweep();
    expect(due.reclaimed.map((r) => [r.containerID, r.reason])).toEqual([["flaky", `netns ${path} missing for 300s (grace 300s)`]]);
    expect(await held()).toEqual([]);
  }, 30_000);

  test("a dry run reclaims nothing and reports what a real sweep would", async () => {
    const { netnsDir, clock, reclaimer, add, held } = await node();
    await add("gone", join(netnsDir, "gone"));
    clock.now += GRACE;
    await reclaimer.sweep(true);
    clock.now += GRACE;
    const dry = await reclaimer.sweep(true);
    expect({ dryRun: dry.dryRun, would: dry.reclaimed.map((r) => r.containerID) }).toEqual({ dryRun: true, would: ["gone"] });
    expect(await held()).toEqual(["gone"]);
    expect((await reclaimer.sweep()).reclaimed.map((r) => r.containerID)).toEqual(["gone"]);
    expect(await held()).toEqual([]);
  }, 30_000);
});
