/**
 * A namespace at its pool's limit, through the engine on a real SQLite store: an ADD asking
 * for a particular address, or a sticky pod coming back to its parked one, is refused (105)
 * at once — not planned, refused by the store and planned again, forever.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-limits-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function engineWith(pools: Parameters<typeof compilePools>[0]) {
  return Engine.start(await SqliteStore.open(join(dir, `l${n++}.db`)), { node: "n", pools: compilePools(pools) });
}

const pod = (name: string) => ({ namespace: "team-a", name });
const code = (p: Promise<unknown>) => p.then(() => 0, (err: { code?: number }) => err.code);

describe("a namespace at its limit", () => {
  test("a requested address is refused with 105, at once", async () => {
    const engine = await engineWith({ t: { addresses: ["10.9.0.0/28"], prefix: 28, maxPerNamespace: 1 } });
    await engine.add({ network: "n", containerID: "c1", ifname: "eth0", pools: ["t"], pod: pod("a") });
    expect(await code(engine.add({ network: "n", containerID: "c2", ifname: "eth0", pools: ["t"], pod: pod("b"), requestedIps: ["10.9.0.9"] }))).toBe(105);
    await engine.store.close();
  }, 5_000);

  test("a sticky pod coming back to its parked address is refused with 105, at once; with a fallback it is served from it", async () => {
    const engine = await engineWith({
      t: { addresses: ["10.9.0.0/28"], prefix: 28, maxPerNamespace: 1, sticky: "pod" },
      spill: { addresses: ["10.9.1.0/28"], prefix: 28 },
    });
    const [parked] = await engine.add({ network: "n", containerID: "c1", ifname: "eth0", pools: ["t"], pod: pod("web-0") });
    await engine.del({ network: "n", containerID: "c1", ifname: "eth0" });
    await engine.add({ network: "n", containerID: "c2", ifname: "eth0", pools: ["t"], pod: pod("web-1") });
    expect(await code(engine.add({ network: "n", containerID: "c3", ifname: "eth0", pools: ["t"], pod: pod("web-0") }))).toBe(105);
    const [spilled] = await engine.add({ network: "n", containerID: "c4", ifname: "eth0", pools: [["t", "spill"]], pod: pod("web-0") });
    expect(spilled!.address).not.toBe(parked!.address);
    expect(spilled!.address).toStartWith("10.9.1.");
    await engine.store.close();
  }, 5_000);
});
