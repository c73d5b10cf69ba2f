/** An address's current holder: the attachment, its pod, where and since when. */
import type { FC } from "hono/jsx";
import type { AllocationRecord } from "../../store/store.ts";
import { allocationsHref, formatTime } from "./format.ts";
import { When } from "./layout.tsx";

export const HolderCard: FC<{ holder: AllocationRecord; now: number }> = ({ holder, now }) => (
  <section class="card holder" aria-label="Current holder">
    <dl class="kv">
      <dt>Pod</dt>
      <dd>{holder.podNamespace && holder.podName ? <a href={allocationsHref({ q: `${holder.podNamespace}/${holder.podName}` })}>{`${holder.podNamespace}/${holder.podName}`}</a> : "—"}</dd>
      <dt>Pod UID</dt>
      <dd class="mono">{holder.podUid ?? "—"}</dd>
      <dt>Container</dt>
      <dd class="mono" title={holder.containerID}>
        {holder.containerID}
      </dd>
      <dt>Interface</dt>
      <dd class="mono">{holder.ifname}</dd>
      <dt>Network namespace</dt>
      <dd class="mono">{holder.netns || "—"}</dd>
      <dt>Address</dt>
      <dd class="mono">
        {holder.ip}/{holder.prefix}
        {holder.gateway ? ` via ${holder.gateway}` : ""}
        {holder.static ? " (static)" : ""}
      </dd>
      <dt>Network</dt>
      <dd>{holder.network}</dd>
      <dt>{holder.pool ? "Pool" : "Range set"}</dt>
      <dd class="mono">{holder.pool ? <a href={allocationsHref({ pool: holder.pool })}>{holder.pool}</a> : `${holder.rangeSet} (the netconf's own ranges)`}</dd>
      <dt>Node</dt>
      <dd>{holder.node}</dd>
      <dt>Since</dt>
      <dd>
        {formatTime(holder.createdAt)} (<When at={holder.createdAt} now={now} />)
      </dd>
    </dl>
  </section>
);
