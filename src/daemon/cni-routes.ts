/** The plugin's calls: add, del, check, gc, status. Each validates its body before the core sees it. */
import { Hono } from "hono";
import { AddRequestSchema, CheckRequestSchema, DelRequestSchema, GcRequestSchema } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { readBody } from "./http-errors.ts";
import type { Engine } from "../engine/engine.ts";
import type { StoreHealth } from "./store-health.ts";

/** STATUS: the daemon answers, and its store can persist (else code 50). */
export async function statusBody(engine: Engine, health: StoreHealth | undefined) {
  await health?.requireAvailable();
  return { version: VERSION, allocations: engine.allocationCount };
}

export function cniRoutes(engine: Engine, health?: StoreHealth): Hono {
  return new Hono()
    .post("/cni/add", async (c) => c.json({ ips: await engine.add(await readBody(c, AddRequestSchema)) }))
    .post("/cni/del", async (c) => {
      await engine.del(await readBody(c, DelRequestSchema));
      return c.json({});
    })
    .post("/cni/check", async (c) => c.json({ ips: await engine.check(await readBody(c, CheckRequestSchema)) }))
    .post("/cni/gc", async (c) => c.json({ released: await engine.gc(await readBody(c, GcRequestSchema)) }))
    .get("/status", async (c) => c.json(await statusBody(engine, health)));
}
