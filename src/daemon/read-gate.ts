/**
 * Admin reads take turns. A page of allocations is read and serialised on the event loop that
 * also answers pod starts; a dozen readers asking at once would each run as soon as the one
 * before finished, and an ADD arriving meanwhile would wait behind all of them. The gate lets
 * one read run at a time and hands the next turn over on a later tick, so a pod start that
 * arrived during a read is answered before the next read begins: its wait is bounded by one
 * page, however many readers queue.
 */
import type { MiddlewareHandler } from "hono";
import { ErrorCode, IpamError } from "../errors.ts";

export class ReadGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly concurrent = 1,
    /** Beyond this many waiting reads, a reader is told to come back (code 11) rather than queued. */
    private readonly maxWaiting = 1000,
  ) {}

  async run<T>(read: () => Promise<T>): Promise<T> {
    await this.turn();
    try {
      return await read();
    } finally {
      this.running--;
      // setImmediate, not a resolved promise: a microtask would start the next read before
      // the event loop looks at the requests that came in during this one.
      if (this.waiting.length > 0) setImmediate(() => this.next());
    }
  }

  /** Hono middleware: the route's whole handler, serialisation included, takes one turn. */
  middleware(): MiddlewareHandler {
    return (_c, next) => this.run(next);
  }

  private turn(): Promise<void> {
    if (this.running < this.concurrent && this.waiting.length === 0) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new IpamError(ErrorCode.TryAgainLater, `${this.waiting.length} admin reads are waiting; try again shortly`));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private next(): void {
    while (this.running < this.concurrent && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!();
    }
  }
}
