/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: candidates try to
 * acquire every retryPeriod (jittered); the leader renews every retryPeriod and steps down if
 * it has not renewed for renewDeadline. Since renewDeadline < leaseDuration and a candidate
 * waits a full leaseDuration (by its own clock) after the record last changed, a leader has
 * stopped counting itself leader before anyone else can take over. `isLeader` is exact at any
 * instant (it checks the deadline itself), so work gated on it never runs late; a leader that
 * stops releases the Lease, so the next one takes over within a retryPeriod.
 */
import { callSafely, reportTo } from "./callbacks.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { KubeClient } from "./client.ts";
import { LeaseLock } from "./lease-lock.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  /** The Lease's name: one per elected role (e.g. "ipamd-controller"). */
  name: string;
  /** This candidate, unique among them (e.g. pod name + a random suffix). */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  /** Give the Lease up on stop() (default true). */
  releaseOnStop?: boolean;
  /** Called on becoming leader; `signal` aborts when leadership ends. */
  onStartedLeading?: (signal: AbortSignal) => void;
  onStoppedLeading?: () => void;
  /** Another identity was seen holding the Lease. */
  onNewLeader?: (identity: string) => void;
  /** A failed read or write of the Lease (it is retried). */
  onError?: (error: unknown) => void;
}

export class LeaderElector {
  readonly #lock: LeaseLock;
  readonly #clock: Clock;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  #stop = new AbortController();
  #running: Promise<void> | null = null;
  /** Set while leading; aborted when leadership ends. */
  #term: AbortController | null = null;
  /** When the last successful renewal was sent (our clock). */
  #renewedAt = 0;
  #lastLeader: string | undefined;
  #waiters: { resolve: (signal: AbortSignal) => void; reject: (error: Error) => void }[] = [];

  constructor(readonly options: LeaderElectionOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#leaseMs = (options.leaseDurationSeconds ?? 15) * 1000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#retryMs < this.#renewDeadlineMs && this.#renewDeadlineMs < this.#leaseMs)) {
      throw new Error("leader election needs retryPeriod < renewDeadline < leaseDuration");
    }
    const { client, namespace, name, identity } = options;
    this.#lock = new LeaseLock({ client, namespace, name, identity, leaseDurationSeconds: this.#leaseMs / 1000, clock: this.#clock });
  }

  /** True while this candidate leads and its last renewal is within the renew deadline. */
  get isLeader(): boolean {
    return this.#term !== null && this.#clock.now() - this.#renewedAt < this.#renewDeadlineMs;
  }

  /** Who held the Lease when last seen ("" if released). */
  get leader(): string | undefined {
    return this.#lock.holder;
  }

  start(): this {
    this.#running ??= this.#run();
    return this;
  }

  /** Resolves when this candidate leads, with a signal that aborts when it stops leading; rejects on stop(). */
  whenLeading(): Promise<AbortSignal> {
    if (this.#term && this.isLeader) return Promise.resolve(this.#term.signal);
    if (this.#stop.signal.aborted) return Promise.reject(new Error(`candidate ${this.options.identity} has stopped`));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Stops campaigning; a leader steps down first, then releases the Lease unless releaseOnStop
   * (or `release` here) says not to — as a crashed process would leave it.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#stop.abort();
    await this.#running;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`candidate ${this.options.identity} has stopped`));
    // By the last record seen, not by #term: an acquire that landed as stop() began holds it too.
    if (this.#lock.holder === this.options.identity && (options.release ?? this.options.releaseOnStop ?? true)) {
      await this.#lock.release(AbortSignal.timeout(this.#renewDeadlineMs)).catch((error) => this.#report(error));
    }
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (!(await this.#attempt(signal))) {
        await this.#clock.sleep(this.#retryMs * (1 + Math.random() * 0.2), signal);
        continue;
      }
      if (signal.aborted) return;
      this.#startLeading();
      await this.#renewWhileLeading(signal);
      this.#stopLeading();
    }
  }

  /** Renews every retryPeriod; returns when a renewal misses the deadline or on stop. */
  async #renewWhileLeading(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#clock.sleep(this.#retryMs, signal);
      if (signal.aborted) return;
      const remaining = this.#renewedAt + this.#renewDeadlineMs - this.#clock.now();
      if (remaining <= 0 || !(await this.#attempt(AbortSignal.any([signal, AbortSignal.timeout(remaining)])))) {
        if (!this.isLeader) return;
      }
    }
  }

  /** One try; a success moves the renewal time to when the request was sent. */
  async #attempt(signal: AbortSignal): Promise<boolean> {
    const sentAt = this.#clock.now();
    let held = false;
    try {
      held = await this.#lock.tryAcquireOrRenew(signal);
    } catch (error) {
      if (!signal.aborted) this.#report(error);
    }
    if (held) this.#renewedAt = sentAt;
    const holder = this.#lock.holder;
    if (holder && holder !== this.#lastLeader) {
      this.#lastLeader = holder;
      if (holder !== this.options.identity) this.#call(() => this.options.onNewLeader?.(holder));
    }
    return held;
  }

  #startLeading(): void {
    this.#term = new AbortController();
    const signal = this.#term.signal;
    this.#call(() => this.options.onStartedLeading?.(signal));
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(signal);
  }

  #stopLeading(): void {
    const term = this.#term;
    this.#term = null;
    term?.abort();
    this.#call(() => this.options.onStoppedLeading?.());
  }

  #call(handler: () => void): void {
    callSafely(handler, this.options.onError);
  }

  #report(error: unknown): void {
    reportTo(this.options.onError, error);
  }
}
