/**
 * What the daemon tells operators as it runs: metrics for every allocation, release and
 * request, a request id on every answer and log line, utilization warnings when a pool
 * crosses its thresholds (80% and 95% by default), and an error log when one is exhausted.
 */
import type { ConsolaInstance } from "consola/core";
import type { MiddlewareHandler } from "hono";
import type { AllocationRecord, ReleaseKind } from "../store/store.ts";
import type { AllocationObserver } from "../engine/apply.ts";
import type { DaemonMetrics } from "./metrics.ts";
import { STORAGE_FAULT_HEADER } from "./store-health.ts";

export const DEFAULT_THRESHOLDS = [80, 95];

/** A pool's (or inline range set's) name, size and use, as the utilization watch judges it. */
export interface PoolUsage {
  name: string;
  size: number;
  used: number;
}

/** Where an allocation came from, in words: its named pool, or its network's inline range set. */
export const sourceOf = (r: AllocationRecord): string => (r.pool !== null ? `pool ${r.pool}` : `range set ${r.rangeSet} of network ${r.network}`);

/** The labels of the per-allocation counters: the named pool ("" for inline ranges) and the network. */
const labelsOf = (r: AllocationRecord) => ({ pool: r.pool ?? "", network: r.network });

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
  /** Each pool's latest allocation: what its next check counts from. */
  private readonly latest = new Map<string, AllocationRecord>();
  private readonly pending = new Map<string, Timer>();

  constructor(
    private readonly metrics: DaemonMetrics,
    private readonly log: ConsolaInstance,
    /** Where an allocation came from, and how used it is now (null: nothing to judge). */
    private readonly usage: (record: AllocationRecord) => PoolUsage | null,
    private readonly thresholds: number[] = DEFAULT_THRESHOLDS,
  ) {}

  allocated(record: AllocationRecord): void {
    const pool = sourceOf(record);
    this.metrics.allocations.inc(labelsOf(record));
    this.latest.set(pool, record);
    this.schedule(pool);
  }

  released(record: AllocationRecord, kind: ReleaseKind): void {
    const pool = sourceOf(record);
    (kind === "reclaimed" ? this.metrics.reclaims : this.metrics.releases).inc(labelsOf(record));
    if (this.latest.has(pool)) this.schedule(pool);
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
    const usage = this.usage(this.latest.get(pool)!);
    const r = this.latest.get(pool)!;
    // A pool's use is the pool's, whichever network allocated from it; a range set is its network's.
    if (usage) this.check(usage, { pool: r.pool ?? "", network: r.pool === null ? r.network : "" });
  }

  check({ name, size, used }: PoolUsage, labels: { pool: string; network: string }): void {
    const percent = size === 0 ? 100 : (used / size) * 100;
    const crossed = this.thresholds.filter((t) => percent >= t).pop() ?? 0;
    const previous = this.level.get(name) ?? 0;
    this.level.set(name, crossed);
    const utilization = Number(percent.toFixed(2));
    if (crossed > previous) {
      this.metrics.utilizationWarnings.inc({ ...labels, threshold: String(crossed) });
      this.log.warn(`${name} is ${percent.toFixed(1)}% used (threshold ${crossed}%)`, { ...labels, utilization, threshold: crossed });
    } else if (crossed < previous) {
      const under = this.thresholds.find((t) => t > crossed)!; // the lowest threshold it fell under
      this.log.info(`${name} is back under ${under}% (${percent.toFixed(1)}% used)`, { ...labels, utilization, threshold: under });
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

/** The metrics label of a request: its CNI command, or "admin". */
export const commandOf = (path: string): string => COMMANDS[path] ?? "admin";

let nextRequestId = 1;

/** The client's request id, or one of ours. */
export const requestIdOf = (given: string | null | undefined): string => given ?? `${process.pid}-${nextRequestId++}`;

/** One answered request, as the telemetry records it. */
export interface AnsweredRequest {
  method: string;
  path: string;
  /** The metrics label (commandOf, or the command a forwarded request carried). */
  command: string;
  id: string;
  /** performance.now() when it came in. */
  started: number;
  status: number;
  /** An error answer's body (code and msg). */
  error?: { code?: number; msg?: string } | null;
  /** Failed on a storage fault, which StoreHealth logged once for its cause. */
  storageFault?: boolean;
}

/** Times a request, counts it by CNI code if it failed, and logs it with its request id. */
export function recordRequest(metrics: DaemonMetrics, log: ConsolaInstance, r: AnsweredRequest): void {
  metrics.requestDuration.observe((performance.now() - r.started) / 1000, { command: r.command });
  if (r.status >= 400) {
    metrics.errors.inc({ code: String(r.error?.code ?? 0) });
    // An exhausted pool stops pods from starting: an error, not a warning. A storage fault
    // was logged once for its cause (StoreHealth); each request it fails is only a detail.
    const level = r.storageFault ? "debug" : r.status >= 500 || r.error?.code === 100 ? "error" : "warn";
    log[level](`${r.method} ${r.path} failed: ${r.error?.msg ?? r.status}`, { requestId: r.id, code: r.error?.code, status: r.status });
  } else if (log.level >= 4) {
    // Built only when it would be written: at hundreds of requests a second, it shows.
    log.debug(`${r.method} ${r.path}`, { requestId: r.id, status: r.status });
  }
}

/** recordRequest for the Hono app's routes, and a request id on every answer. */
export function requestTelemetry(metrics: DaemonMetrics, log: ConsolaInstance): MiddlewareHandler {
  return async (c, next) => {
    const id = requestIdOf(c.req.header("x-request-id"));
    const started = performance.now();
    await next();
    c.header("x-request-id", id);
    const status = c.res.status;
    const error = status >= 400 ? ((await c.res.clone().json().catch(() => null)) as AnsweredRequest["error"]) : undefined;
    recordRequest(metrics, log, { method: c.req.method, path: c.req.path, command: commandOf(c.req.path), id, started, status, error, storageFault: c.res.headers.has(STORAGE_FAULT_HEADER) });
  };
}
