/** Restarting the daemon rebuilds its index of taken addresses from the store, in bulk, exactly. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { formatIp, parseIp } from "../../src/ipam/address.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-rebuild-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("after a restart every address is taken again, fragmented, IPv4 and IPv6, and ADDs never collide", async () => {
  const path = join(dir, "rebuild.db");
  let store = await SqliteStore.open(path);
  let ipam = await Engine.start(store, { node: "n" });
  const base4 = parseIp("10.64.0.0")!.value;
  const base6 = parseIp("fd00::")!.value;
  // Every other address of the v4 range taken, and a few runs: 1,500 extents across many leaves.
  const v4 = Array.from({ length: 3000 }, (_, i) => formatIp(base4 + 2n + BigInt(i < 2000 ? 2 * i : 2000 + i), 4));
  const v6 = Array.from({ length: 300 }, (_, i) => formatIp(base6 + 2n + BigInt(3 * i), 6));
  const entries = [...v4, ...v6].map((ip, i) => ({ ip, containerID: `c${i}`, ifname: "eth0" }));
  const ranges = [[{ subnet: "10.64.0.0/16" }], [{ subnet: "fd00::/64" }]];
  const imported = await ipam.importAllocations({ network: "net", ranges, entries, cursors: [{ rangeSet: 0, ip: "10.64.0.1" }] });
  expect(imported.imported).toBe(3300);
  await store.close();

  store = await SqliteStore.open(path);
  ipam = await Engine.start(store, { node: "n" });
  expect(ipam.allocationCount).toBe(3300);
  const taken4 = ipam.takenSet("net", 4);
  const taken6 = ipam.takenSet("net", 6);
  for (const ip of v4) expect(taken4.has(parseIp(ip)!.value)).toBe(true);
  for (const ip of v6) expect(taken6.has(parseIp(ip)!.value)).toBe(true);
  expect(taken4.has(base4 + 3n)).toBe(false);
  expect(taken4.countIn(base4, base4 + 65535n)).toBe(3000);
  expect(taken6.countIn(base6, base6 + 10_000n)).toBe(300);
  const held = new Set([...v4, ...v6]);
  for (let i = 0; i < 50; i++) {
    const ips = await ipam.add({ network: "net", containerID: `new${i}`, ifname: "eth0", ranges });
    for (const a of ips) expect(held.has(a.address)).toBe(false);
    for (const a of ips) held.add(a.address);
  }
  await store.close();
}, 30_000);
