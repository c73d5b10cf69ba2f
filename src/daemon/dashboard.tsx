/**
 * The web dashboard (`GET /`): pools with utilization bars and recent reclaims, a searchable
 * allocations table, and each address's holder and history. Server-rendered with hono/jsx,
 * read-only, one inline stylesheet, and complete without JavaScript. Everything a pod named
 * (namespace, name, container ID) is escaped by JSX; no page builds HTML from strings.
 */
import { Hono } from "hono";
import { IpamError, toIpamError } from "../errors.ts";
import type { Engine } from "../engine/engine.ts";
import type { AppOptions } from "./app.ts";
import { addressPage } from "./dashboard/address-page.tsx";
import { allocationsPage } from "./dashboard/allocations-page.tsx";
import { homePage } from "./dashboard/home-page.tsx";
import { page } from "./dashboard/layout.tsx";
import { httpStatusOf } from "./http-errors.ts";
import { ReadGate } from "./read-gate.ts";

export interface DashboardOptions extends Pick<AppOptions, "onUnexpectedError"> {
  /** The clock for "5 min ago"; the wall clock by default. */
  now?: () => number;
}

export function dashboardRoutes(engine: Engine, options: DashboardOptions = {}, gate = new ReadGate()): Hono {
  const now = options.now ?? Date.now;
  const turn = gate.read();
  const app = new Hono();
  app.get("/", turn, (c) => homePage(c, engine, now));
  app.get("/allocations", turn, (c) => allocationsPage(c, engine, now));
  app.get("/address/:ip", turn, (c) => addressPage(c, engine, now));
  // Failures are pages too: an operator's browser should never show a JSON error body.
  app.onError((err, c) => {
    if (!(err instanceof IpamError)) options.onUnexpectedError?.(err);
    const e = toIpamError(err);
    return page(
      c,
      {
        title: "Error",
        section: "pools",
        children: (
          <>
            <h1>Something went wrong</h1>
            <div class="notice">
              <strong>{e.message}</strong>
              {e.details && <p class="muted">{e.details}</p>}
            </div>
            <p>
              <a href="/">← Pools</a>
            </p>
          </>
        ),
      },
      httpStatusOf(e.code),
    );
  });
  return app;
}
