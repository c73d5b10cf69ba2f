/**
 * The one apply path: every plan — ADD, DEL, GC, sweep, admin release, expiry, import, block
 * claims — is carried out here and nowhere else. Memory takes what the plan reserves at once
 * (synchronously, right after planning, so no other plan sees the same free address), the
 * changes are committed, then memory settles. A failure that surely did not apply puts memory
 * back as it was; one that may have applied (a shared store's timeout) keeps every address
 * either outcome leaves taken and has the affected spaces re-read from the store.
 */
import type { Store } from "../store/store.ts";
import type { AllocationRecord, ReleaseKind } from "../store/store.ts";
import type { Plan } from "./plan.ts";
import type { Sharing } from "./sharing.ts";
import type { AddressState } from "./state.ts";

/** Told of every durable allocation and release, for metrics and utilization warnings. */
export interface AllocationObserver {
  allocated(record: AllocationRecord): void;
  released(record: AllocationRecord, kind: ReleaseKind): void;
}

export class Applier {
  /** Spaces memory may have wrong since an unsure failure: re-read before they are planned again. */
  readonly unsure = new Set<string>();

  constructor(
    private readonly state: AddressState,
    private readonly store: Store,
    private readonly sharing: Sharing,
    private readonly observer: AllocationObserver | undefined,
  ) {}

  /** Carries a plan out; must be called in the same turn as the planning (see above). */
  async apply(plan: Plan): Promise<void> {
    const undo = this.state.reserve(plan);
    try {
      if (plan.changes.length > 0) await this.store.commit(plan.changes);
    } catch (err) {
      if (this.sharing.mayHaveApplied(err)) {
        this.state.settleUnsure(plan);
        for (const space of spacesOf(plan)) this.unsure.add(space);
      } else {
        undo();
      }
      throw err;
    }
    this.state.settle(plan);
    for (const r of plan.allocated) this.observer?.allocated(r);
    for (const { record, kind } of plan.released) this.observer?.released(record, kind);
  }
}

/** The address spaces a plan touches. */
function spacesOf(plan: Plan): Set<string> {
  const spaces = new Set<string>();
  for (const a of [...plan.takes, ...plan.frees, ...plan.ends, ...plan.holds]) spaces.add(a.space);
  for (const r of plan.allocated) spaces.add(r.space);
  for (const { record } of plan.released) spaces.add(record.space);
  return spaces;
}
