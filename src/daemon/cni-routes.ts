/** The plugin's calls: add, del, check, gc, status. Each validates its body before the core sees it. */
import { Hono } from "hono";
import { AddRequestSchema, CheckRequestSchema, DelRequestSchema, GcRequestSchema } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { readBody } from "./http-errors.ts";
import type { IpamService } from "./ipam-service.ts";
import type { StoreHealth } from "./store-health.ts";

/** STATUS: the daemon answers, and its store can persist (else code 50). */
export async function statusBody(ipam: IpamService, health: StoreHealth | undefined) {
  await health?.requireAvailable();
  return { version: VERSION, allocations: ipam.allocationCount };
}

export function cniRoutes(ipam: IpamService, health?: StoreHealth): Hono {
  return new Hono()
    .post("/cni/add", async (c) => c.json({ ips: await ipam.add(await readBody(c, AddRequestSchema)) }))
    .post("/cni/del", async (c) => {
      await ipam.del(await readBody(c, DelRequestSchema));
      return c.json({});
    })
    .post("/cni/check", async (c) => c.json({ ips: await ipam.check(await readBody(c, CheckRequestSchema)) }))
    .post("/cni/gc", async (c) => c.json({ released: await ipam.gc(await readBody(c, GcRequestSchema)) }))
    .get("/status", async (c) => c.json(await statusBody(ipam, health)));
}
