/** Pool cards: utilization bar coloured by level, figures, node subnets, resting addresses, orphans; and the netconfs' range sets. */
import type { FC } from "hono/jsx";
import type { PoolReport, PoolsResponse, RangeSetReport } from "../../protocol-admin.ts";
import { allocationsHref, formatCount, formatPercent, levelOf } from "./format.ts";

/** A named pool's definition in one line. */
function definitionText(report: PoolReport): string {
  const d = report.definition;
  if (typeof d === "string") return d;
  if (d && typeof d === "object") {
    const p = d as { addresses?: unknown; supernet?: unknown; nodeSubnetPrefix?: unknown; gateway?: unknown; excludedAddresses?: unknown };
    const parts: string[] = [];
    if (Array.isArray(p.addresses)) parts.push(p.addresses.map(String).join(", "));
    if (typeof p.supernet === "string") parts.push(`${p.supernet}, /${String(p.nodeSubnetPrefix)} per node`);
    if (typeof p.gateway === "string") parts.push(`gateway ${p.gateway}`);
    if (Array.isArray(p.excludedAddresses) && p.excludedAddresses.length > 0) parts.push(`${p.excludedAddresses.length} excluded`);
    if (parts.length > 0) return parts.join(" · ");
  }
  return JSON.stringify(d) ?? "";
}

/** A count; a huge one (an IPv6 pool) as a power of two, exact on hover. */
const Count: FC<{ value: string | number }> = ({ value }) => {
  const text = formatCount(value);
  const power = /^(≈?)2\^(\d+)$/.exec(text);
  return power ? (
    <span title={String(value)}>
      {power[1] ? "≈ " : ""}2<sup>{power[2]}</sup>
    </span>
  ) : (
    <>{text}</>
  );
};

const KIND: Record<PoolReport["kind"], string> = { named: "pool", "node-subnet": "node subnet" };

/** What a utilization bar shows, of a named pool or a range set. */
type Figures = Pick<PoolReport, "utilization" | "used" | "size">;

export const UtilizationBar: FC<{ report: Figures; title: string }> = ({ report, title }) => {
  const level = levelOf(report.utilization);
  const width = Math.min(100, Math.max(0, report.utilization));
  const percent = formatPercent(report.utilization, report.used);
  return (
    <div>
      <div class={`util ${level}`}>
        <strong>{percent}</strong>
        <span class="muted">
          <Count value={report.used} /> of <Count value={report.size} /> used
        </span>
      </div>
      <div
        class={`meter ${level}`}
        role="progressbar"
        aria-label={`${title} utilization`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={width}
        aria-valuetext={percent}
      >
        <span style={`width:${width}%`} />
      </div>
    </div>
  );
};

/** Whom a pool serves, which namespaces fill it, and what its rules no longer allow (after a reload). */
const TenantFacts: FC<{ report: PoolReport }> = ({ report }) => {
  const { outOfScope: out } = report;
  const stray = out.namespaces.length + out.overLimit.length + (out.thisNode > 0 ? 1 : 0);
  return (
    <div class="facts">
      <span title="The address space its addresses are unique in">
        space <b>{report.space}</b>
      </span>
      <span title="Namespaces it serves">
        namespaces <b>{report.namespaces?.join(", ") ?? "all"}</b>
      </span>
      {report.nodes && (
        <span title="Nodes it serves (names or globs)">
          nodes <b>{report.nodes.join(", ")}</b>
        </span>
      )}
      {report.maxPerNamespace !== undefined && (
        <span title="maxPerNamespace: the most of its addresses one namespace may hold">
          limit <b>{report.maxPerNamespace}</b> per namespace
        </span>
      )}
      {report.namespaceUse.length > 0 && (
        <span title={`${report.namespacesUsing} namespaces hold its addresses`}>
          top{" "}
          {report.namespaceUse.map((u, i) => (
            <>
              {i > 0 && ", "}
              <a href={allocationsHref({ q: u.namespace })}>{u.namespace}</a> <b>{u.count}</b>
            </>
          ))}
        </span>
      )}
      {stray > 0 && (
        <span class="alert" title="Allocations its rules no longer allow since a reload: they stay until released">
          out of scope{" "}
          <b>
            {[...out.namespaces.map((u) => `${u.namespace} ${u.count}`), ...out.overLimit.map((u) => `${u.namespace} ${u.count} over limit`), ...(out.thisNode ? [`${out.thisNode} on this node`] : [])].join(", ")}
          </b>
        </span>
      )}
    </div>
  );
};

const PoolCard: FC<{ report: PoolReport }> = ({ report }) => {
  const level = levelOf(report.utilization);
  const subnets = report.nodeSubnets ?? [];
  return (
    <section class="card pool" aria-label={report.name}>
      <div class="card-head">
        <h3>
          <a href={allocationsHref({ pool: report.name })} title="Browse this pool's allocations">
            {report.name}
          </a>
        </h3>
        <span>
          {level !== "ok" && <span class={`badge ${level}`}>{level === "crit" ? "critical" : "high"}</span>}{" "}
          <span class="badge">
            {KIND[report.kind]} · IPv{report.family}
          </span>
        </span>
      </div>
      <p class="def" title={definitionText(report)}>
        {definitionText(report)}
      </p>
      <UtilizationBar report={report} title={report.name} />
      <FigureList report={report} />
      <div class="facts">
        {report.nodeSubnet && (
          <span>
            this node <b>{report.nodeSubnet}</b>
          </span>
        )}
        <span title="Released, resting before reuse (releaseCooldown)">
          cooling <b>{report.cooling}</b>
        </span>
        <span title="Kept for a sticky pod that is gone for now">
          sticky <b>{report.stickyParked}</b>
        </span>
        <span title="Reserved by operators (ipamd reserve)">
          reserved <b>{report.reserved}</b>
        </span>
        <span class={report.orphans.count > 0 ? "alert" : undefined} title="Held outside the pool's current definition">
          orphaned <b>{report.orphans.count}</b>
        </span>
        <a href={allocationsHref({ pool: report.name })}>Browse →</a>
      </div>
      <TenantFacts report={report} />
      {report.orphans.count > 0 && (
        <details>
          <summary>Orphaned addresses</summary>
          <p class="muted">Held in this pool's space but outside its current definition; they stay taken until released.</p>
          <ul>
            {report.orphans.sample.map((ip) => (
              <li>{ip}</li>
            ))}
            {report.orphans.count > report.orphans.sample.length && <li>… {report.orphans.count - report.orphans.sample.length} more</li>}
          </ul>
        </details>
      )}
      {subnets.length > 0 && (
        <details>
          <summary>{subnets.length} node subnet{subnets.length === 1 ? "" : "s"}</summary>
          <ul>
            {subnets.map((s) => (
              <li>
                {s.subnet} → {s.node}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
};

/** Used, free and size, as a named pool's or a range set's card shows them. */
const FigureList: FC<{ report: Figures & { free: string } }> = ({ report }) => (
  <dl class="figures">
    <div>
      <dt>Used</dt>
      <dd>
        <Count value={report.used} />
      </dd>
    </div>
    <div>
      <dt>Free</dt>
      <dd>
        <Count value={report.free} />
      </dd>
    </div>
    <div>
      <dt>Size</dt>
      <dd>
        <Count value={report.size} />
      </dd>
    </div>
  </dl>
);

/** A netconf's inline range set: no named pool, its network's own address space. */
const RangeSetCard: FC<{ report: RangeSetReport }> = ({ report }) => {
  const level = levelOf(report.utilization);
  const title = `network ${report.network}`;
  return (
    <section class="card pool" aria-label={title}>
      <div class="card-head">
        <h3>
          <a href={allocationsHref({ network: report.network })} title="Browse this network's allocations">
            {title}
          </a>
        </h3>
        <span>
          {level !== "ok" && <span class={`badge ${level}`}>{level === "crit" ? "critical" : "high"}</span>}{" "}
          <span class="badge">netconf ranges · IPv{report.family}</span>
        </span>
      </div>
      <p class="def" title={report.rangeSet}>
        {report.rangeSet}
      </p>
      <UtilizationBar report={report} title={title} />
      <FigureList report={report} />
      <div class="facts">
        <a href={allocationsHref({ network: report.network })}>Browse →</a>
      </div>
    </section>
  );
};

export const PoolGrid: FC<{ reports: PoolsResponse }> = ({ reports }) =>
  reports.pools.length + reports.rangeSets.length === 0 ? (
    <div class="card empty">No pools yet: named pools come from the daemon's config; netconf ranges appear with their first allocation.</div>
  ) : (
    <div class="grid">
      {reports.pools.map((r) => (
        <PoolCard report={r} />
      ))}
      {reports.rangeSets.map((r) => (
        <RangeSetCard report={r} />
      ))}
    </div>
  );
