/** The dashboard's allocations: one search box, exact filters, numbered pages. */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import type { Engine } from "../../engine/engine.ts";
import { addressHref, allocationsHref } from "./format.ts";
import { page } from "./layout.tsx";
import { MAX_PAGE, PAGE_SIZE, parseSearch, type Search } from "./search.ts";
import { AllocationsTable, Pager } from "./tables.tsx";

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

export async function allocationsPage(c: Context, engine: Engine, now: () => number): Promise<Response> {
  const store = engine.store;
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
}
