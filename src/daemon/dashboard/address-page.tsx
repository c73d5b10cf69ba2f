/** The dashboard's page of one address: who holds it now, and its history. */
import type { Context } from "hono";
import type { Engine } from "../../engine/engine.ts";
import { canonicalIp } from "../../ipam/address.ts";
import { allocationsHref, formatTime } from "./format.ts";
import { HolderCard } from "./holder.tsx";
import { page, When } from "./layout.tsx";
import { HistoryTable } from "./tables.tsx";

const ADDRESS_HISTORY = 200;

/** Text that is no address: a 400 page that offers a search instead. */
function notAnAddress(c: Context, text: string): Promise<Response> {
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

/** An address never handed out (or whose history was pruned): a friendly 404 page. */
function noRecord(c: Context, ip: string): Promise<Response> {
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

export async function addressPage(c: Context, engine: Engine, now: () => number): Promise<Response> {
  const store = engine.store;
  const text = c.req.param("ip") ?? "";
  const ip = canonicalIp(text);
  if (!ip) return notAnAddress(c, text);
  const [holders, history, reservations] = await Promise.all([store.holders(ip), store.history({ ip, limit: ADDRESS_HISTORY }), engine.reservations()]);
  if (holders.length === 0 && history.length === 0) return noRecord(c, ip);
  const reserved = reservations.filter((h) => h.ip === ip);
  const at = now();
  return page(c, {
    title: ip,
    section: "address",
    q: ip,
    children: (
      <>
        <div class="status">
          <h1>{ip}</h1>
          {holders.length > 0 ? <span class="badge ok">allocated</span> : reserved.length > 0 ? <span class="badge">reserved</span> : <span class="badge">free</span>}
        </div>
        {reserved.map((h) => (
          <p class="lead">
            Reserved in pool <b>{h.pool}</b> by {h.by ?? "an operator"}
            {h.note ? `: ${h.note}` : ""} — never handed out to a pod until unreserved.
          </p>
        ))}
        <p class="lead">
          {holders.length > 0 ? (
            <>
              Allocated <When at={holders[0]!.createdAt} now={at} />
              {holders.length > 1 && `, held in ${holders.length} address spaces`}.
            </>
          ) : reserved.length > 0 ? null : (
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
}
