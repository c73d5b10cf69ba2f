/** The dashboard's first page: every pool's card, and the addresses reclaimed lately. */
import type { Context } from "hono";
import type { Engine } from "../../engine/engine.ts";
import type { HistoryEvent } from "../../store/store.ts";
import { poolReports } from "../pool-report.ts";
import { formatCount } from "./format.ts";
import { page } from "./layout.tsx";
import { PoolGrid } from "./pools.tsx";
import { HistoryTable } from "./tables.tsx";

const RECENT_RECLAIMS = 20;

export async function homePage(c: Context, engine: Engine, now: () => number): Promise<Response> {
  const store = engine.store;
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
}
