/**
 * Optimistic concurrency: read, change, write with the read's resourceVersion; if someone
 * wrote in between the server answers Conflict, and the whole read-change-write runs again on
 * the fresh object. Each Conflict means another writer succeeded, so retries make progress;
 * the jittered pause keeps two writers from colliding in lockstep.
 */
import type { KubeClient } from "./client.ts";
import { ConflictError } from "./errors.ts";
import type { ObjectOf, ResourceType } from "./resources.ts";

export interface RetryOptions {
  /** Attempts in all (default 10). */
  attempts?: number;
  /** The first pause; it doubles per conflict up to 1 s, each with up to 100% jitter (default 10 ms). */
  backoffMs?: number;
  /** Told about each conflict before the retry (e.g. to count them). */
  onConflict?: (error: ConflictError, attempt: number) => void;
}

/** Runs `attempt` until it does not throw ConflictError; the last conflict is thrown when attempts run out. */
export async function retryOnConflict<T>(attempt: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 10;
  let pause = options.backoffMs ?? 10;
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ConflictError) || i >= attempts) throw error;
      options.onConflict?.(error, i);
      await Bun.sleep(pause * (1 + Math.random()));
      pause = Math.min(pause * 2, 1000);
    }
  }
}

/**
 * get → change → update, retried on conflict. `change` edits the fresh object in place or
 * returns a new one; returning `null` means "nothing to change" and skips the write.
 */
export async function modify<R extends ResourceType>(
  client: KubeClient,
  type: R,
  name: string,
  change: (object: ObjectOf<R>) => ObjectOf<R> | void | null,
  options: RetryOptions & { namespace?: string; status?: boolean } = {},
): Promise<ObjectOf<R>> {
  return retryOnConflict(async () => {
    const current = await client.get(type, name, { namespace: options.namespace });
    const changed = change(current);
    if (changed === null) return current;
    const next = changed ?? current;
    return options.status ? client.updateStatus(type, next) : client.update(type, next);
  }, options);
}
