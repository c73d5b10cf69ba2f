/**
 * The daemon's HTTP app: versioned routes mounted from their domain files, one error shape.
 * The plugin's calls (cni-routes.ts) are answered before the admin API's framework is entered;
 * everything else is a Hono app.
 */
import { type Context, Hono } from "hono";
import { ErrorCode, IpamError } from "../errors.ts";
import { cniHandlers, statusBody } from "./cni-routes.ts";
import { adminRoutes } from "./admin-routes.ts";
import { dashboardRoutes } from "./dashboard.tsx";
import type { ConsolaInstance } from "consola/core";
import { errorResponse } from "./http-errors.ts";
import type { DaemonMetrics } from "./metrics.ts";
import { requestTelemetry } from "./observability.ts";
import { poolReports } from "./pool-report.ts";
import { namespaceSeries } from "./pool-tenants.ts";
import { ReadGate } from "./read-gate.ts";
import type { Reclaimer } from "./reclaim.ts";
import type { Engine } from "../engine/engine.ts";
import { StorageFault } from "../store/storage-fault.ts";
import { STORAGE_FAULT_HEADER, type StoreHealth } from "./store-health.ts";

export interface AppOptions {
  /** Called with unexpected errors (not IpamErrors), which are bugs worth a log line. */
  onUnexpectedError?: (err: unknown) => void;
  /** Re-reads the daemon's config (SIGHUP does the same). */
  reload?: () => Promise<{ pools: string[] }>;
  reclaimer?: Reclaimer;
  metrics?: DaemonMetrics;
  log?: ConsolaInstance;
  /** Throws when this listener may not change state (read-only TCP admin listener). */
  requireMutation?: (c: Context) => void;
  /** The TCP admin listener: no CNI calls (those belong to the node's runtime, on the socket). */
  adminOnly?: boolean;
  /** Told of storage faults; STATUS answers 50 while one lasts. */
  health?: StoreHealth;
  /** Throws when this listener must not serve the request at all (the TCP listener's Host check). */
  admit?: (c: Context) => void;
  /** Admin list reads take turns through it; one per daemon, shared by its listeners. */
  readGate?: ReadGate;
}

/** What serves a listener: `fetch` for Bun.serve, `request` for tests (as Hono's). */
export interface DaemonApp {
  fetch(req: Request): Response | Promise<Response>;
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** The path of a request URL, without parsing all of it (the plugin's calls are hot). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", start);
  return start < 0 ? "/" : url.slice(start, query < 0 ? undefined : query);
}

export function createApp(engine: Engine, options: AppOptions = {}): DaemonApp {
  const app = new Hono();
  /**
   * What a failure means besides its answer: the store's health, and a log line for a bug.
   * True for a storage fault, whose answer says so (logged once per cause by the health watch).
   */
  const noteFailure = (err: unknown): boolean => {
    options.health?.failed(err);
    if (!(err instanceof IpamError)) options.onUnexpectedError?.(err);
    return err instanceof StorageFault;
  };
  const gate = options.readGate ?? new ReadGate();
  if (options.metrics && options.log) app.use(requestTelemetry(options.metrics, options.log));
  // After telemetry, so a refused request is counted and logged like any client error.
  const admit = options.admit;
  if (admit) {
    app.use(async (c, next) => {
      admit(c);
      await next();
    });
  }
  if (options.adminOnly) {
    // Status stays: it is what probes and the dashboard's monitoring read.
    app.get("/v1/status", async (c) => c.json(await statusBody(engine, options.health)));
  }
  if (options.metrics) {
    const metrics = options.metrics;
    app.get("/metrics", async (c) => {
      // This node's share only: a scrape must not read a shared store's whole cluster.
      metrics.reports = await poolReports(engine, engine.store, "node");
      metrics.namespaces = await namespaceSeries(engine);
      return c.text(metrics.registry.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    });
  }
  app.route("/v1", adminRoutes(engine, options, gate));
  app.route("/", dashboardRoutes(engine, options, gate));
  app.notFound((c) => errorResponse(c, new IpamError(ErrorCode.NotFound, `no such endpoint: ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => {
    if (noteFailure(err)) c.header(STORAGE_FAULT_HEADER, "1");
    return errorResponse(c, err);
  });
  // The TCP admin listener serves no CNI calls: those belong to the node's runtime, on the socket.
  if (options.adminOnly) return app;
  const cni = cniHandlers(engine, { health: options.health, gate, metrics: options.metrics, log: options.log, noteFailure });
  const fetch = (req: Request) => cni.get(`${req.method} ${pathOf(req.url)}`)?.(req) ?? app.fetch(req);
  return { fetch, request: (path, init) => fetch(new Request(new URL(path, "http://localhost").href, init)) };
}
