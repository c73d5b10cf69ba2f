/**
 * The web dashboard (`GET /`): pools with utilization bars and recent reclaims, a searchable
 * allocations table, and each address's holder and history. Server-rendered with hono/jsx,
 * read-only, one inline stylesheet, and complete without JavaScript. Everything a pod named
 * (namespace, name, container ID) is escaped by JSX; no page builds HTML from strings.
 */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { canonicalIp } from "../ipam/address.ts";
import { IpamError, toIpamError } from "../errors.ts";
import type { HistoryEvent } from "../store/store.ts";
import { addressHref, allocationsHref, formatCount, formatTime } from "./dashboard/format.ts";
import { HolderCard } from "./dashboard/holder.tsx";
import { page, When } from "./dashboard/layout.tsx";
import { PoolGrid } from "./dashboard/pools.tsx";
import { MAX_PAGE, PAGE_SIZE, parseSearch, type Search } from "./dashboard/search.ts";
import { AllocationsTable, HistoryTable, Pager } from "./dashboard/tables.tsx";
import { httpStatusOf } from "./http-errors.ts";
import type { AppOptions } from "./app.ts";
import type { Engine } from "../engine/engine.ts";
import { poolReports } from "./pool-report.ts";

const RECENT_RECLAIMS = 20;
const ADDRESS_HISTORY = 200;

export interface DashboardOptions extends Pick<AppOptions, "onUnexpectedError"> {
  /** The clock for "5 min ago"; the wall clock by default. */
  now?: () => number;
}

/** "2 allocations matching pod default/web-0", or the page's place in a longer list. */
function summaryOf(search: Search, shown: number, more: boolean): string {
  const what = search.described ? ` matching ${search.described}` : "";
  if (search.page === 1 && !more) return `${shown} allocation${shown === 1 ? "" : "s"}${what}.`;
  return `Allocations${what}, in address order.`;
}

/** The exact filters in force (pool, node, network), each with a link that drops it and keeps the rest. */
const FilterChips: FC<{ search: Search }> = ({ search }) => {
  const filters = (["pool", "node", "network"] as const).filter((key) => search[key]);
  if (filters.length === 0) return null;
  const without = (dropped: string) => allocationsHref({ q: search.q, ...Object.fromEntries(filters.filter((k) => k !== dropped).map((k) => [k, search[k]])) });
  return (
    <div class="chips">
      {filters.map((key) => (
        <span class="chip">
          {key} <span class={key === "pool" ? "mono" : undefined}>{search[key]}</span>
          <a href={without(key)} aria-label={`Remove the ${key} filter`}>
            ✕
          </a>
        </span>
      ))}
    </div>
  );
};

export function dashboardRoutes(engine: Engine, options: DashboardOptions = {}): Hono {
  const store = engine.store;
  const now = options.now ?? Date.now;
  const app = new Hono();

  app.get("/", async (c) => {
    const [reports, reclaimed] = await Promise.all([poolReports(engine, store), store.history({ kind: "reclaimed", limit: RECENT_RECLAIMS })]);
    // A backend that cannot filter by kind answers with every kind: keep the reclaims.
    const reclaims = reclaimed.filter((e: HistoryEvent) => e.kind === "reclaimed");
    const inUse = [...reports.pools, ...reports.rangeSets].reduce((n, r) => n + r.used, 0);
    const count = reports.pools.length + reports.rangeSets.length;
    return page(c, {
      title: "Pools",
      section: "pools",
      children: (
        <>
          <h1>Pools</h1>
          <p class="lead">
            {count} pool{count === 1 ? "" : "s"} · {formatCount(inUse)} address{inUse === 1 ? "" : "es"} in use ·{" "}
            <a href="/allocations">all allocations</a>
          </p>
          <PoolGrid reports={reports} />
          <h2>Recent reclaims</h2>
          {reclaims.length === 0 ? (
            <div class="card empty">Nothing reclaimed: addresses whose pod's network namespace is gone past the grace period are listed here.</div>
          ) : (
            <HistoryTable events={reclaims} now={now()} reclaims label="Recent reclaims" />
          )}
        </>
      ),
    });
  });

  app.get("/allocations", async (c) => {
    const search = parseSearch(c.req.query());
    const found = await store.allocations(search.filter);
    const rows = found.slice(0, PAGE_SIZE);
    const href = (p: number) => allocationsHref({ q: search.q, pool: search.pool, node: search.node, network: search.network, page: p > 1 ? p : undefined });
    return page(c, {
      title: search.described ? `Allocations: ${search.described}` : "Allocations",
      section: "allocations",
      q: search.q,
      children: (
        <>
          <h1>Allocations</h1>
          <p class="lead">
            {summaryOf(search, rows.length, found.length > PAGE_SIZE && search.page < MAX_PAGE)}
            {search.ip && (
              <>
                {" · "}
                <a href={addressHref(search.ip)}>history of {search.ip} →</a>
              </>
            )}
          </p>
          <FilterChips search={search} />
          {rows.length === 0 ? (
            <div class="card empty">
              {search.page > 1 ? "No more allocations." : search.described ? `No allocation matches ${search.described}.` : "No addresses are allocated."}
              {search.q && !search.ip && <p>Search by address, namespace/pod, namespace/, a prefix of a container ID or pod name, or a node.</p>}
            </div>
          ) : (
            <AllocationsTable rows={rows} now={now()} />
          )}
          {(search.page > 1 || found.length > PAGE_SIZE && search.page < MAX_PAGE) && <Pager page={search.page} shown={rows.length} hasNext={found.length > PAGE_SIZE && search.page < MAX_PAGE} pageSize={PAGE_SIZE} href={href} />}
        </>
      ),
    });
  });

  app.get("/address/:ip", async (c) => {
    const text = c.req.param("ip");
    const ip = canonicalIp(text);
    if (!ip) {
      return page(
        c,
        {
          title: "Not an address",
          section: "address",
          q: text,
          children: (
            <>
              <h1>“{text}” is not an IP address</h1>
              <p class="lead">
                Addresses are written like 10.0.3.17 or fd00::17. <a href={allocationsHref({ q: text })}>Search the allocations for “{text}” instead →</a>
              </p>
            </>
          ),
        },
        400,
      );
    }
    const [holders, history] = await Promise.all([store.holders(ip), store.history({ ip, limit: ADDRESS_HISTORY })]);
    if (holders.length === 0 && history.length === 0) {
      return page(
        c,
        {
          title: `${ip}: no record`,
          section: "address",
          q: ip,
          children: (
            <>
              <h1>No record of {ip}</h1>
              <p class="lead">This daemon has not handed out {ip}, or its history is older than the retention and was pruned.</p>
              <p>
                <a href="/">← Pools</a> · <a href="/allocations">All allocations</a>
              </p>
            </>
          ),
        },
        404,
      );
    }
    const at = now();
    return page(c, {
      title: ip,
      section: "address",
      q: ip,
      children: (
        <>
          <div class="status">
            <h1>{ip}</h1>
            {holders.length > 0 ? <span class="badge ok">allocated</span> : <span class="badge">free</span>}
          </div>
          <p class="lead">
            {holders.length > 0 ? (
              <>
                Allocated <When at={holders[0]!.createdAt} now={at} />
                {holders.length > 1 && `, held in ${holders.length} address spaces`}.
              </>
            ) : (
              `Free now; last ${history[0]!.kind} ${formatTime(history[0]!.at)}.`
            )}
          </p>
          {holders.length > 0 && <h2>{holders.length === 1 ? "Current holder" : "Current holders"}</h2>}
          {holders.map((h) => (
            <HolderCard holder={h} now={at} />
          ))}
          <h2>History</h2>
          <HistoryTable events={history} now={at} label={`History of ${ip}`} />
          {history.length === ADDRESS_HISTORY && <p class="muted">The newest {ADDRESS_HISTORY} events are shown.</p>}
        </>
      ),
    });
  });

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
