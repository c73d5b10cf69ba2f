/** The Prometheus exposition's own pieces: histogram buckets are cumulative, series keyed by their labels. */
import { expect, test } from "bun:test";
import { Counter, Histogram } from "../../src/daemon/metrics.ts";

test("a histogram counts each value once and exposes cumulative buckets, +Inf equal to the count", () => {
  const h = new Histogram("t_seconds", "test", [0.25, 0.5, 1]);
  for (const v of [0.125, 0.25, 0.375, 0.75, 2, 4]) h.observe(v, { command: "add" });
  h.observe(0.625, { command: "del" });
  const lines = h.samples();
  expect(lines.filter((l) => l.includes('command="add"'))).toEqual([
    't_seconds_bucket{command="add",le="0.25"} 2',
    't_seconds_bucket{command="add",le="0.5"} 3',
    't_seconds_bucket{command="add",le="1"} 4',
    't_seconds_bucket{command="add",le="+Inf"} 6',
    't_seconds_sum{command="add"} 7.5',
    't_seconds_count{command="add"} 6',
  ]);
  expect(lines).toContain('t_seconds_bucket{command="del",le="0.5"} 0');
  expect(lines).toContain('t_seconds_bucket{command="del",le="1"} 1');
});

test("a series is its label set, whatever the order the labels come in; label values cannot run into each other", () => {
  const c = new Counter("t_total", "test");
  c.inc({ pool: "a", network: "n" });
  c.inc({ network: "n", pool: "a" });
  c.inc({ pool: "a;network=n", network: "" });
  c.inc({ pool: "", network: "n;pool=a" });
  expect(c.samples()).toEqual(['t_total{pool="a",network="n"} 2', 't_total{pool="a;network=n",network=""} 1', 't_total{pool="",network="n;pool=a"} 1']);
});
