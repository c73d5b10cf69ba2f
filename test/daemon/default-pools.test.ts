import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { loadConfig } from "../../src/daemon/config.ts";

test("the pools `make run` starts with are a valid config: default (IPv4) and default-v6", async () => {
  const { pools } = (await loadConfig(resolve(import.meta.dir, "../../scripts/default-pools.yaml"))).setup;
  expect([...pools.keys()]).toEqual(["default", "default-v6"]);
  expect(pools.get("default")!.rangeSet!.size).toBe(2n ** 16n - 3n);
}, 30_000);
