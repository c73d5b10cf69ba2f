/** The daemon's HTTP app: versioned routes mounted from their domain files, one error shape. */
import { Hono } from "hono";
import { ErrorCode, IpamError } from "../errors.ts";
import { cniRoutes } from "./cni-routes.ts";
import { adminRoutes } from "./admin-routes.ts";
import { errorResponse } from "./http-errors.ts";
import type { IpamService } from "./ipam-service.ts";

export interface AppOptions {
  /** Called with unexpected errors (not IpamErrors), which are bugs worth a log line. */
  onUnexpectedError?: (err: unknown) => void;
  /** Re-reads the daemon's config (SIGHUP does the same). */
  reload?: () => Promise<{ pools: string[] }>;
}

export function createApp(ipam: IpamService, options: AppOptions = {}): Hono {
  const app = new Hono();
  app.route("/v1", cniRoutes(ipam));
  app.route("/v1", adminRoutes(ipam, options));
  app.notFound((c) => errorResponse(c, new IpamError(ErrorCode.NotFound, `no such endpoint: ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => {
    if (!(err instanceof IpamError)) options.onUnexpectedError?.(err);
    return errorResponse(c, err);
  });
  return app;
}
