/**
 * The controller's queue of keys to reconcile (namespace/name), as controllers do it: a key
 * added many times before it runs runs once; a key is never reconciled twice at once (added
 * while running, it runs again after); a failed key is retried with growing back-off, and a
 * success forgets its failures. A few keys run at once.
 */
export interface WorkQueueOptions {
  concurrency?: number;
  /** Back-off after the nth failure: initialMs * 2^(n-1), at most maxMs. */
  initialMs?: number;
  maxMs?: number;
  onError?: (key: string, error: unknown) => void;
}

export class WorkQueue {
  readonly #ready: string[] = [];
  readonly #queued = new Set<string>();
  readonly #running = new Set<string>();
  /** Added while running: to run again once done. */
  readonly #again = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #workers = 0;
  #stopped = false;
  #idle: (() => void)[] = [];

  constructor(
    private readonly reconcile: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {}

  add(key: string, afterMs = 0): void {
    if (this.#stopped) return;
    if (afterMs > 0) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.add(key);
      }, afterMs);
      this.#timers.add(timer);
      return;
    }
    if (this.#running.has(key)) this.#again.add(key);
    else if (!this.#queued.has(key)) {
      this.#queued.add(key);
      this.#ready.push(key);
    }
    this.#pump();
  }

  /** Resolves when nothing is queued or running (retries waiting on a timer do not count). */
  idle(): Promise<void> {
    if (this.#ready.length === 0 && this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#ready.length = 0;
    this.#queued.clear();
    await this.idle();
  }

  #pump(): void {
    const limit = this.options.concurrency ?? 4;
    while (this.#workers < limit && this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      this.#queued.delete(key);
      this.#running.add(key);
      this.#workers++;
      void this.#run(key);
    }
  }

  async #run(key: string): Promise<void> {
    try {
      await this.reconcile(key);
      this.#failures.delete(key);
    } catch (error) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      this.options.onError?.(key, error);
      this.add(key, Math.min(this.options.maxMs ?? 30_000, (this.options.initialMs ?? 100) * 2 ** (failures - 1)));
    } finally {
      this.#running.delete(key);
      this.#workers--;
      if (this.#again.delete(key)) this.add(key);
      this.#pump();
      if (this.#ready.length === 0 && this.#running.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
