/**
 * Prometheus text exposition (format 0.0.4) without a client library: counters, gauges and
 * histograms with labels, named after Prometheus conventions (`ipamd_…`, `_total`,
 * `_seconds`). `promtool check metrics` is run on the output in the tests.
 */
import type { PoolReport, PoolsResponse, RangeSetReport } from "../protocol-admin.ts";

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (labels: Labels, extra?: [string, string]): string => {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`);
  if (extra) pairs.push(`${extra[0]}="${escape(extra[1])}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
};
/**
 * A series' key: its labels in name order, each value length-prefixed, so no two label sets
 * share one. Built on every request: no JSON, and no sort of a single label.
 */
const keyOf = (labels: Labels): string => {
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let key = "";
  for (const name of names) key += `${name}=${labels[name]!.length}:${labels[name]};`;
  return key;
};
const num = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : "-Inf");

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
  ) {}
  abstract samples(): string[];
  render(): string {
    const samples = this.samples();
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...samples].join("\n");
  }
}

export class Counter extends Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }
  samples(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${this.name}${labelText(labels)} ${num(value)}`);
  }
}

/** A gauge whose samples are computed when scraped. */
export class Gauge extends Metric {
  constructor(
    name: string,
    help: string,
    private readonly collect: () => { labels: Labels; value: number }[],
  ) {
    super(name, help, "gauge");
  }
  samples(): string[] {
    return this.collect().map(({ labels, value }) => `${this.name}${labelText(labels)} ${num(value)}`);
  }
}

export class Histogram extends Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    private readonly buckets: number[],
  ) {
    super(name, help, "histogram");
  }
  /** Counts the value in its own bucket only; the cumulative counts are summed when scraped. */
  observe(value: number, labels: Labels = {}): void {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    const i = this.buckets.findIndex((le) => value <= le);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  samples(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => out.push(`${this.name}_bucket${labelText(s.labels, ["le", num(le)])} ${(cumulative += s.counts[i]!)}`));
      out.push(`${this.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
  render(): string {
    return `${this.metrics.map((m) => m.render()).join("\n")}\n`;
  }
}

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The daemon's metrics; pool gauges are filled from the latest pool reports at scrape time. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly allocations = this.registry.add(new Counter("ipamd_allocations_total", "Addresses allocated, by named pool (empty for a netconf's inline ranges) and network."));
  readonly releases = this.registry.add(new Counter("ipamd_releases_total", "Addresses released by DEL or an operator, by named pool and network."));
  readonly reclaims = this.registry.add(new Counter("ipamd_reclaims_total", "Addresses reclaimed from dead attachments (CNI GC, ipamd gc, the leak sweep), by named pool and network."));
  readonly errors = this.registry.add(new Counter("ipamd_errors_total", "Requests answered with an error, by CNI error code."));
  readonly requestDuration = this.registry.add(new Histogram("ipamd_request_duration_seconds", "Time to answer a request on the socket, by command.", LATENCY_BUCKETS));
  readonly commitDuration = this.registry.add(new Histogram("ipamd_store_commit_duration_seconds", "Time of one durable store commit (one fsync, shared by a batch).", LATENCY_BUCKETS));
  readonly commitBatch = this.registry.add(new Histogram("ipamd_store_commit_batch_size", "Requests sharing one store commit (group commit).", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]));
  readonly utilizationWarnings = this.registry.add(new Counter("ipamd_pool_utilization_warnings_total", "Times a named pool or inline range set crossed a utilization threshold, by named pool, network and threshold."));
  /** Set from fresh pool reports just before each scrape. */
  reports: PoolsResponse = { pools: [], rangeSets: [] };
  /** Per namespace, in pools with maxPerNamespace: this node's allocations (set before each scrape). */
  namespaces: { pool: string; namespace: string; count: number }[] = [];
  private poolGauge(name: string, help: string, value: (p: PoolReport) => number): void {
    this.registry.add(new Gauge(name, help, () => this.reports.pools.map((p) => ({ labels: { pool: p.name, kind: p.kind }, value: value(p) }))));
  }
  private rangeSetGauge(name: string, help: string, value: (r: RangeSetReport) => number): void {
    this.registry.add(new Gauge(name, help, () => this.reports.rangeSets.map((r) => ({ labels: { network: r.network, range_set: r.rangeSet }, value: value(r) }))));
  }
  constructor() {
    this.rangeSetGauge("ipamd_range_set_size_addresses", "Addresses a netconf's inline range set can hand out, by network and range set.", (r) => Number(r.size));
    this.rangeSetGauge("ipamd_range_set_allocated_addresses", "Addresses of an inline range set allocated to attachments.", (r) => r.used);
    this.rangeSetGauge("ipamd_range_set_free_addresses", "Addresses of an inline range set free to hand out.", (r) => Number(r.free));
    this.rangeSetGauge("ipamd_range_set_utilization_ratio", "Used share of an inline range set, 0 to 1.", (r) => r.utilization / 100);
    this.poolGauge("ipamd_pool_size_addresses", "Addresses a pool can hand out.", (p) => Number(p.size));
    this.poolGauge("ipamd_pool_allocated_addresses", "Addresses of a pool allocated to attachments (holds not included).", (p) => p.used);
    this.poolGauge("ipamd_pool_held_addresses", "Addresses of a pool held but not allocated: cooling down, or parked for a sticky pod.", (p) => p.cooling + p.stickyParked);
    this.poolGauge("ipamd_pool_free_addresses", "Addresses of a pool free to hand out.", (p) => Number(p.free));
    this.poolGauge("ipamd_pool_utilization_ratio", "Used share of a pool, 0 to 1.", (p) => p.utilization / 100);
    this.poolGauge("ipamd_pool_orphaned_addresses", "Addresses held outside a pool's current definition.", (p) => p.orphans.count);
    this.poolGauge("ipamd_pool_reserved_addresses", "Addresses of a pool reserved by operators (ipamd reserve).", (p) => p.reserved);
    this.registry.add(
      new Gauge("ipamd_pool_namespace_limit_addresses", "A pool's maxPerNamespace: the most of its addresses one namespace may hold.", () =>
        this.reports.pools.flatMap((p) => (p.maxPerNamespace === undefined ? [] : [{ labels: { pool: p.name }, value: p.maxPerNamespace }])),
      ),
    );
    this.registry.add(
      new Gauge(
        "ipamd_namespace_allocated_addresses",
        "Addresses of a pool with maxPerNamespace held by a namespace, allocated by this node (sum over nodes for the cluster); the largest 100 namespaces per pool, the rest as namespace=\"_other\".",
        () => this.namespaces.map((n) => ({ labels: { pool: n.pool, namespace: n.namespace }, value: n.count })),
      ),
    );
  }
}
