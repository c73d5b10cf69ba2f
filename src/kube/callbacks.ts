/**
 * The long-running loops (informer, leader election) call code that is not theirs: a
 * consumer's handler that throws is the consumer's bug, and it must reach onError rather than
 * stop the loop that every other consumer depends on.
 */

/** Tells onError, if there is one; an onError that throws has nowhere left to go. */
export function reportTo(onError: ((error: unknown) => void) | undefined, error: unknown): void {
  try {
    onError?.(error);
  } catch {
    // nothing left to tell
  }
}

/** Runs a consumer's handler; what it throws goes to onError. */
export function callSafely(handler: () => void, onError: ((error: unknown) => void) | undefined): void {
  try {
    handler();
  } catch (error) {
    reportTo(onError, error);
  }
}
