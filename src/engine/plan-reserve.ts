/**
 * Planning reservations: addresses an operator keeps from being handed out (a VIP, a router,
 * a printer), each a hold of kind `reserved` with what it is for and who asked, written to the
 * address's history. All of a reservation's addresses or none: one already allocated or held
 * refuses the whole of it, naming them. Pure.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { type Family, formatIp } from "../ipam/address.ts";
import type { RangeSet } from "../ipam/pool.ts";
import type { Hold } from "../store/store.ts";
import { endHold } from "./plan-release.ts";
import { emptyPlan, type Plan } from "./plan.ts";
import type { StateView } from "./state.ts";

/** The most addresses one reservation may span: one commit's worth of holds, and a readable refusal. */
export const MAX_RESERVATION = 1024;

export interface ReserveInput {
  pool: string;
  space: string;
  rangeSet: RangeSet;
  family: Family;
  first: bigint;
  last: bigint;
  note: string;
  by: string;
}

const inRangeSet = (set: RangeSet, value: bigint) => set.ranges.some((r) => value >= r.start && value <= r.end);

/** Who and why, as the history tells it. */
export const reservationCause = (verb: "reserved" | "unreserved", pool: string, by: string, note: string): string =>
  `${verb} in pool ${pool} by ${by}${note ? `: ${note}` : ""}`;

export function planReserve(view: StateView, input: ReserveInput): Plan {
  const { space, family, first, last, pool } = input;
  if (last < first) throw new IpamError(ErrorCode.InvalidNetworkConfig, "a reservation's last address comes before its first");
  if (last - first + 1n > BigInt(MAX_RESERVATION)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `a reservation spans at most ${MAX_RESERVATION} addresses; split it`);
  const outside: string[] = [];
  const taken: string[] = [];
  for (let v = first; v <= last; v++) {
    if (!inRangeSet(input.rangeSet, v)) outside.push(formatIp(v, family));
    else if (view.takenSet(space, family).has(v)) taken.push(formatIp(v, family));
  }
  const some = (list: string[]) => `${list.slice(0, 8).join(", ")}${list.length > 8 ? ` and ${list.length - 8} more` : ""}`;
  if (outside.length > 0) throw new IpamError(ErrorCode.AddressNotInPool, `${some(outside)} ${outside.length === 1 ? "is not an address" : "are not addresses"} pool ${pool} hands out (on this node)`);
  if (taken.length > 0) throw new IpamError(ErrorCode.AddressInUse, `${some(taken)} ${taken.length === 1 ? "is" : "are"} allocated or held already (see ipamd show); nothing was reserved`);
  const plan = emptyPlan();
  const cause = reservationCause("reserved", pool, input.by, input.note);
  for (let v = first; v <= last; v++) {
    const hold: Hold = { space, family, ip: formatIp(v, family), kind: "reserved", until: null, pod: null, pool, note: input.note, by: input.by };
    plan.takes.push({ space, family, value: v });
    plan.holds.push(hold);
    plan.changes.push({ op: "hold", hold, event: { kind: "reserved", cause } });
  }
  return plan;
}

/** Ends the given reservations (as the store holds them), each with its history event. */
export function planUnreserve(view: StateView, holds: Hold[], by: string): Plan {
  const plan = emptyPlan();
  for (const hold of holds) {
    if (hold.kind !== "reserved") continue;
    const ended = endHold(view, hold, { kind: "unreserved", cause: reservationCause("unreserved", hold.pool ?? "?", by, hold.note ?? "") });
    plan.changes.push(...ended.changes);
    plan.ends.push(...ended.ends);
    plan.frees.push(...ended.frees);
  }
  return plan;
}
