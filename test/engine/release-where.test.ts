/** An operator's release names what it frees: `--network` leaves other spaces' holds alone. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { compilePools } from "../../src/ipam/named-pool.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-release-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("release --network releases that network's allocation and no cooldown of another space", async () => {
  const engine = await Engine.start(await SqliteStore.open(join(dir, "r.db")), {
    node: "n",
    pools: compilePools({
      a: { addresses: ["10.0.0.5"], prefix: 24 },
      b: { addresses: ["10.0.0.5"], prefix: 24, space: "lab", releaseCooldown: 3600 },
    }),
  });
  await engine.add({ network: "na", containerID: "c1", ifname: "eth0", pools: ["a"] });
  await engine.add({ network: "nb", containerID: "c2", ifname: "eth0", pools: ["b"] });
  await engine.del({ network: "nb", containerID: "c2", ifname: "eth0" });
  expect((await engine.store.holds("@lab:ipv4")).map((h) => h.kind)).toEqual(["cooling"]);
  const result = await engine.releaseAddress("10.0.0.5", "operator", { network: "na" });
  expect(result.released.map((r) => r.network)).toEqual(["na"]);
  expect((await engine.store.holds("@lab:ipv4")).map((h) => h.kind)).toEqual(["cooling"]);
  await engine.store.close();
});
