/** Operators' calls over the socket: pool reports and config reload. */
import { Hono } from "hono";
import { ErrorCode, IpamError } from "../errors.ts";
import type { AppOptions } from "./app.ts";
import { ConfigError } from "./config.ts";
import type { IpamService } from "./ipam-service.ts";
import { poolReports } from "./pool-report.ts";

export function adminRoutes(ipam: IpamService, options: AppOptions): Hono {
  return new Hono()
    .get("/pools", async (c) => c.json({ pools: await poolReports(ipam, ipam.store) }))
    .post("/reload", async (c) => {
      if (!options.reload) throw new IpamError(ErrorCode.NotFound, "this daemon has no config file to reload");
      try {
        return c.json(await options.reload());
      } catch (err) {
        if (err instanceof ConfigError) throw new IpamError(ErrorCode.InvalidNetworkConfig, err.message);
        throw err;
      }
    });
}
