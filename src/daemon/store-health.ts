/**
 * Whether the store can persist right now, as the daemon last saw it. A storage fault (disk
 * full, read-only, I/O error, etcd unreachable) is logged at error level once per cause, not
 * once per failed request, and turns STATUS into "not available" (code 50) so a runtime stops
 * sending pods here. The daemon notices recovery by itself: the next commit that succeeds, or
 * a probe write that STATUS makes at most once a second while the fault lasts.
 */
import type { ConsolaInstance } from "consola/core";
import { ErrorCode, IpamError } from "../errors.ts";
import { StorageFault } from "../store/storage-fault.ts";

const PROBE_INTERVAL_MS = 1000;

/** Marks an answer that failed on a storage fault: its request needs no log line of its own. */
export const STORAGE_FAULT_HEADER = "x-ipamd-storage-fault";

export class StoreHealth {
  private fault: StorageFault | null = null;
  private lastProbe = 0;
  private probing: Promise<void> | null = null;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly log: ConsolaInstance | undefined,
  ) {}

  get current(): StorageFault | null {
    return this.fault;
  }

  /** Told of every failure: storage faults change the state, anything else is not ours. */
  failed(err: unknown): void {
    if (!(err instanceof StorageFault)) return;
    if (this.fault?.reason !== err.reason || this.fault.store !== err.store) {
      this.log?.error(`store cannot be used: ${err.message}; pod starts fail with code ${err.code} until it can`, { store: err.store, cause: err.reason, code: err.code });
    }
    this.fault = err;
  }

  /** Told of every durable commit. */
  succeeded(): void {
    if (!this.fault) return;
    this.log?.info(`store works again: ${this.fault.store}`, { store: this.fault.store, after: this.fault.reason });
    this.fault = null;
  }

  /** Tries a write now; resolves either way (the state says how it went). */
  async check(): Promise<void> {
    this.lastProbe = performance.now();
    this.probing ??= this.probe().then(
      () => this.succeeded(),
      (err) => this.failed(err),
    ).finally(() => {
      this.probing = null;
    });
    await this.probing;
  }

  /**
   * STATUS: throws code 50 while the store cannot persist. A fault is re-probed at most once
   * a second, so a store that came back is seen without waiting for a pod to try.
   */
  async requireAvailable(): Promise<void> {
    if (this.fault && performance.now() - this.lastProbe >= PROBE_INTERVAL_MS) await this.check();
    const fault = this.fault;
    if (fault) throw new IpamError(ErrorCode.NotAvailable, `ipamd cannot serve ADD: ${fault.message}`);
  }
}
