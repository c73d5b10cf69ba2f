/** The dashboard's tables: allocations, history events, and the pager under them. */
import type { FC } from "hono/jsx";
import type { AllocationRecord, HistoryEvent } from "../../store/store.ts";
import { addressHref, allocationsHref, formatTime, shortId } from "./format.ts";
import { When } from "./layout.tsx";

/** A long pool name or range set, cut to fit its column (the cell's title holds it whole). */
const shorten = (text: string): string => (text.length > 28 ? `${text.slice(0, 27)}…` : text);

const Pod: FC<{ namespace: string | null; name: string | null }> = ({ namespace, name }) =>
  namespace && name ? <a href={allocationsHref({ q: `${namespace}/${name}` })}>{`${namespace}/${name}`}</a> : <span class="muted">—</span>;

const Container: FC<{ id: string | null }> = ({ id }) =>
  id ? (
    <a class="mono" href={allocationsHref({ q: id })} title={id}>
      {shortId(id)}
    </a>
  ) : (
    <span class="muted">—</span>
  );

export const AllocationsTable: FC<{ rows: AllocationRecord[]; now: number }> = ({ rows, now }) => (
  <div class="table-wrap">
    <table aria-label="Allocations">
      <thead>
        <tr>
          <th>Address</th>
          <th>Pod</th>
          <th>Container</th>
          <th class="opt">Interface</th>
          <th class="opt">Network</th>
          <th class="opt">Pool</th>
          <th>Node</th>
          <th>Since</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr>
            <td class="ip" data-label="Address">
              <span>
                <a href={addressHref(r.ip)}>{r.ip}</a>
                <span class="muted">/{r.prefix}</span>
              </span>
            </td>
            <td data-label="Pod">
              <Pod namespace={r.podNamespace} name={r.podName} />
            </td>
            <td class="nowrap" data-label="Container">
              <Container id={r.containerID} />
            </td>
            <td class="opt mono" data-label="Interface">
              {r.ifname}
            </td>
            <td class="opt" data-label="Network">
              {r.network}
            </td>
            <td class="opt mono" title={r.pool ?? r.rangeSet ?? ""} data-label="Pool">
              {r.pool ? <a href={allocationsHref({ pool: r.pool })}>{shorten(r.pool)}</a> : <span class="muted">{shorten(r.rangeSet ?? "")}</span>}
            </td>
            <td class="nowrap" data-label="Node">
              <a href={allocationsHref({ node: r.node })}>{r.node}</a>
            </td>
            <td class="nowrap" data-label="Since">
              <When at={r.createdAt} now={now} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

/**
 * History events, newest first. `reclaims`: the home page's list across addresses (every
 * event a reclaim, so the address instead of the event's kind); otherwise one address's
 * events with exact times.
 */
export const HistoryTable: FC<{ events: HistoryEvent[]; now: number; reclaims?: boolean; label: string }> = ({ events, now, reclaims, label }) => (
  <div class="table-wrap">
    <table aria-label={label}>
      <thead>
        <tr>
          <th>When</th>
          {reclaims ? <th>Address</th> : <th>Event</th>}
          <th>Pod</th>
          <th>Container</th>
          {!reclaims && <th class="opt">Interface</th>}
          <th class="opt">Network</th>
          <th>Cause</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr>
            <td class="nowrap" data-label="When">
              {reclaims ? <When at={e.at} now={now} /> : <span title={new Date(e.at).toISOString()}>{formatTime(e.at)}</span>}
            </td>
            {reclaims ? (
              <td class="ip" data-label="Address">
                <a href={addressHref(e.ip)}>{e.ip}</a>
              </td>
            ) : (
              <td data-label="Event">
                <span class={`badge ${e.kind}`}>{e.kind}</span>
              </td>
            )}
            <td data-label="Pod">
              <Pod namespace={e.podNamespace} name={e.podName} />
            </td>
            <td class="nowrap" data-label="Container">
              <Container id={e.containerID} />
            </td>
            {!reclaims && (
              <td class="opt mono" data-label="Interface">
                {e.ifname ?? ""}
              </td>
            )}
            <td class="opt" data-label="Network">
              {e.network}
            </td>
            <td class="cause" data-label="Cause">
              {e.cause ?? ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

export const Pager: FC<{ page: number; shown: number; hasNext: boolean; pageSize: number; href: (page: number) => string }> = ({ page, shown, hasNext, pageSize, href }) => {
  const first = (page - 1) * pageSize + 1;
  return (
    <nav class="pager" aria-label="Pages">
      {page > 1 ? (
        <a href={href(page - 1)} rel="prev">
          ← Previous
        </a>
      ) : (
        <span class="off">← Previous</span>
      )}
      <span class="muted">{shown > 0 ? `${first}–${first + shown - 1}` : "none"}</span>
      {hasNext ? (
        <a href={href(page + 1)} rel="next">
          Next →
        </a>
      ) : (
        <span class="off">Next →</span>
      )}
    </nav>
  );
};
