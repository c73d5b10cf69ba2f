/**
 * The values the etcd store writes: allocation records and hold markers at a/ keys, events at
 * ev/ keys.
 */
import type { Family } from "../../ipam/address.ts";
import type { KeyValue } from "../etcd-client.ts";
import type { AllocationRecord, HistoryEvent } from "../store.ts";

/** The a/ value of an address held for reuse rather than allocated. */
export interface HoldMarker {
  held: "cooling" | "sticky";
  space: string;
  family: Family;
  ip: string;
}

export const holdMarker = (held: HoldMarker["held"], space: string, ip: string): string =>
  JSON.stringify({ held, space, family: ip.includes(":") ? 6 : 4, ip } satisfies HoldMarker);

export const isHold = (value: unknown): value is HoldMarker => typeof value === "object" && value !== null && "held" in value;

/** An a/ or att/ value: a record or a hold marker. */
export const parseValue = (kv: KeyValue): AllocationRecord | HoldMarker => JSON.parse(kv.value) as AllocationRecord | HoldMarker;

/** The allocation records among a/ or att/ values, hold markers left out. */
export const recordsOf = (kvs: KeyValue[]): AllocationRecord[] => kvs.map(parseValue).filter((r): r is AllocationRecord => !isHold(r));

/**
 * An event as stored, with its id made from etcd's revision of the key and the event's place
 * in its transaction: unique across every daemon, and growing in commit order.
 */
export interface StoredEvent extends Omit<HistoryEvent, "id"> {
  /** Its place among the events of one transaction. */
  n: number;
}

export function eventOf(kv: KeyValue): HistoryEvent {
  const { n, ...event } = JSON.parse(kv.value) as StoredEvent;
  return { ...event, id: kv.createRevision * 1000 + n };
}
