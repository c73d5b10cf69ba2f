/**
 * One step of Lease-based election, client-go's tryAcquireOrRenew: read the Lease; if another
 * holder's lease has not run out, note who leads; otherwise write ourselves in as holder with
 * the read's resourceVersion, so of two candidates that both saw it free only one write wins
 * (the other gets a Conflict and stays a candidate).
 *
 * "Run out" is judged by our own clock: the lease counts as held until leaseDurationSeconds
 * after we last saw its record change, whatever its renewTime says, so clocks that disagree
 * between machines cannot make two leaders.
 */
import type { Clock } from "./clock.ts";
import type { KubeClient } from "./client.ts";
import { AlreadyExistsError, ConflictError, NotFoundError } from "./errors.ts";
import { Leases } from "./resources.ts";
import { formatMicroTime, type Lease } from "./schemas/core.ts";

export interface LeaseLockOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  clock: Clock;
}

export class LeaseLock {
  /** The record as last read or written, and when (our clock) it was first seen so. */
  #observed: Lease | null = null;
  #observedAt = 0;

  constructor(readonly options: LeaseLockOptions) {}

  /** The holder the Lease named when last seen ("" when released, undefined before any read). */
  get holder(): string | undefined {
    return this.#observed ? (this.#observed.spec?.holderIdentity ?? "") : undefined;
  }

  /** Acquires or renews; true when we hold the lease now. Failures other than losing a race throw. */
  async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity, clock } = this.options;
    const now = clock.now();
    let lease: Lease;
    try {
      lease = await client.get(Leases, name, { namespace, signal });
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      return this.#create(now, signal);
    }
    this.#observe(lease, now);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? this.options.leaseDurationSeconds) * 1000;
    if (holder !== "" && holder !== identity && this.#observedAt + durationMs > now) return false;
    const renewing = holder === identity;
    const next: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.options.leaseDurationSeconds,
        acquireTime: renewing && spec.acquireTime ? spec.acquireTime : formatMicroTime(now),
        renewTime: formatMicroTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
      },
    };
    return this.#write(() => client.update(Leases, next, { signal }), now);
  }

  /** Gives the lease up (holder "" and a 1 s duration) so a candidate takes over at once. */
  async release(signal: AbortSignal): Promise<void> {
    const { client, namespace, name, identity, clock } = this.options;
    const lease = await client.get(Leases, name, { namespace, signal });
    if (lease.spec?.holderIdentity !== identity) return;
    const now = formatMicroTime(clock.now());
    const spec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now };
    await client.update(Leases, { ...lease, spec }, { signal }).catch((error) => {
      if (!(error instanceof ConflictError)) throw error;
      // Someone wrote since: they took over already, nothing left to give up.
    });
  }

  async #create(now: number, signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationSeconds } = this.options;
    const time = formatMicroTime(now);
    const lease = { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: time, renewTime: time, leaseTransitions: 0 } };
    return this.#write(() => client.create(Leases, lease, { signal }), now);
  }

  /** A lost race (someone wrote first) is a "no", not an error. */
  async #write(write: () => Promise<Lease>, now: number): Promise<boolean> {
    try {
      this.#observe(await write(), now);
      return true;
    } catch (error) {
      if (error instanceof ConflictError || error instanceof AlreadyExistsError) return false;
      throw error;
    }
  }

  #observe(lease: Lease, now: number): void {
    if (this.#observed?.metadata.resourceVersion === lease.metadata.resourceVersion) return;
    this.#observed = lease;
    this.#observedAt = now;
  }
}
