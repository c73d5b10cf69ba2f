/**
 * Operations on one attachment run one after another: a runtime's retried ADD racing its own
 * DEL cannot interleave. Different attachments run concurrently and share store commits.
 */
import type { AttachmentKey } from "../store/store.ts";

export class AttachmentLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs fn after every earlier operation on the same attachment has finished. */
  async run<T>(network: string, key: AttachmentKey, fn: () => Promise<T>): Promise<T> {
    const lockKey = `${network}\0${key.containerID}\0${key.ifname}`;
    const previous = this.tails.get(lockKey);
    const run = (previous ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(lockKey, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(lockKey) === tail) this.tails.delete(lockKey);
    }
  }
}
