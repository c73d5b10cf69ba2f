/**
 * What the daemon tells operators as it runs: metrics for every allocation, release and
 * request, a request id on every answer and log line, utilization warnings when a pool
 * crosses its thresholds (80% and 95% by default), and an error log when one is exhausted.
 */
import type { ConsolaInstance } from "consola/core";
import type { MiddlewareHandler } from "hono";
import type { AllocationRecord, ReleaseKind } from "../store/store.ts";
import type { AllocationObserver } from "./ipam-service.ts";
import type { DaemonMetrics } from "./metrics.ts";
import type { Target } from "./pool-registry.ts";
import { STORAGE_FAULT_HEADER } from "./store-health.ts";

export const DEFAULT_THRESHOLDS = [80, 95];

/**
 * Remembers the highest threshold each pool is at or above, so each crossing up is told once
 * (a warning and a count), and going back under one is told too (the next crossing up is a
 * new warning). Counting a fragmented pool is O(extents), so a pool is counted at most once
 * a second; a change within that second is judged when it ends, so a burst that stops past
 * a threshold (or back under it) is still told, within a second.
 */
export class UtilizationWatch implements AllocationObserver {
  private readonly level = new Map<string, number>();
  private readonly lastCheck = new Map<string, number>();
  /** Each pool's target as last allocated from: what a release's check counts. */
  private readonly targets = new Map<string, Target>();
  private readonly pending = new Map<string, Timer>();

  constructor(
    private readonly metrics: DaemonMetrics,
    private readonly log: ConsolaInstance,
    private readonly used: (target: Target) => number,
    private readonly thresholds: number[] = DEFAULT_THRESHOLDS,
  ) {}

  allocated(record: AllocationRecord, target: Target): void {
    this.metrics.allocations.inc({ pool: record.pool });
    this.targets.set(target.pool, target);
    this.schedule(target.pool);
  }

  released(record: AllocationRecord, kind: ReleaseKind): void {
    (kind === "reclaimed" ? this.metrics.reclaims : this.metrics.releases).inc({ pool: record.pool });
    if (this.targets.has(record.pool)) this.schedule(record.pool);
  }

  private schedule(pool: string): void {
    if (this.pending.has(pool)) return;
    const wait = (this.lastCheck.get(pool) ?? -Infinity) + 1000 - performance.now();
    if (wait <= 0) return this.checkNow(pool);
    const timer = setTimeout(() => {
      this.pending.delete(pool);
      this.checkNow(pool);
    }, wait);
    timer.unref();
    this.pending.set(pool, timer);
  }

  private checkNow(pool: string): void {
    this.lastCheck.set(pool, performance.now());
    this.check(this.targets.get(pool)!);
  }

  check(target: Target): void {
    const size = Number(target.set.size);
    const percent = size === 0 ? 100 : (this.used(target) / size) * 100;
    const crossed = this.thresholds.filter((t) => percent >= t).pop() ?? 0;
    const previous = this.level.get(target.pool) ?? 0;
    this.level.set(target.pool, crossed);
    const utilization = Number(percent.toFixed(2));
    if (crossed > previous) {
      this.metrics.utilizationWarnings.inc({ pool: target.pool, threshold: String(crossed) });
      this.log.warn(`pool ${target.pool} is ${percent.toFixed(1)}% used (threshold ${crossed}%)`, { pool: target.pool, utilization, threshold: crossed });
    } else if (crossed < previous) {
      const under = this.thresholds.find((t) => t > crossed)!; // the lowest threshold it fell under
      this.log.info(`pool ${target.pool} is back under ${under}% (${percent.toFixed(1)}% used)`, { pool: target.pool, utilization, threshold: under });
    }
  }
}

const COMMANDS: Record<string, string> = {
  "/v1/cni/add": "add",
  "/v1/cni/del": "del",
  "/v1/cni/check": "check",
  "/v1/cni/gc": "gc",
  "/v1/status": "status",
};

let nextRequestId = 1;

/** Times every request, counts errors by CNI code, and tags answers and logs with a request id. */
export function requestTelemetry(metrics: DaemonMetrics, log: ConsolaInstance): MiddlewareHandler {
  return async (c, next) => {
    const id = c.req.header("x-request-id") ?? `${process.pid}-${nextRequestId++}`;
    const started = performance.now();
    await next();
    const command = COMMANDS[c.req.path] ?? "admin";
    metrics.requestDuration.observe((performance.now() - started) / 1000, { command });
    c.header("x-request-id", id);
    if (c.res.status >= 400) {
      const body = (await c.res.clone().json().catch(() => null)) as { code?: number; msg?: string } | null;
      metrics.errors.inc({ code: String(body?.code ?? 0) });
      // An exhausted pool stops pods from starting: an error, not a warning. A storage fault
      // was logged once for its cause (StoreHealth); each request it fails is only a detail.
      const level = c.res.headers.has(STORAGE_FAULT_HEADER) ? "debug" : c.res.status >= 500 || body?.code === 100 ? "error" : "warn";
      log[level](`${c.req.method} ${c.req.path} failed: ${body?.msg ?? c.res.status}`, { requestId: id, code: body?.code, status: c.res.status });
    } else {
      log.debug(`${c.req.method} ${c.req.path}`, { requestId: id, status: c.res.status });
    }
  };
}
