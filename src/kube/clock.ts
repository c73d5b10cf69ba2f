/**
 * Time for the loops that wait (informer back-off, leader election): the real clock by
 * default, a parameter so tests can give other timings or a clock of their own. A sleep ends
 * early when its signal aborts, so stopping a loop never waits out a pause.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or as soon as `signal` aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
    }),
};

/** Exponential back-off with full jitter: a random pause in [base·2^failures / 2, base·2^failures], capped. */
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}
