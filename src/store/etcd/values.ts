/**
 * The values the etcd store writes and reads back: allocation records and hold markers at a/
 * keys, hold details, bindings, events. Other daemons write them too, so each is validated
 * with its schema (records.ts) on the way in; a value that fails is named as a storage fault
 * on its key, never trusted half-way.
 */
import { array, type BaseIssue, type BaseSchema, type InferOutput, number, object, omit, optional, picklist, safeParse, string, union } from "valibot";
import { ErrorCode, firstIssue, IpamError } from "../../errors.ts";
import type { KeyValue } from "../etcd-client.ts";
import { type AllocationRecord, AllocationRecordSchema, BindingSchema, HistoryEventSchema, type Hold, HoldSchema } from "../records.ts";
import type { HistoryEvent } from "../store.ts";

/** The a/ value of an address held rather than allocated (the details are at its hold/ key). */
const HoldMarkerSchema = object({ held: picklist(["cooling", "sticky", "reserved"]), space: string(), family: picklist([4, 6]), ip: string() });
export type HoldMarker = InferOutput<typeof HoldMarkerSchema>;

/** The marker of a hold: what an unhold compares the a/ key with, so it is made one way only. */
export const holdMarker = (hold: Pick<Hold, "kind" | "space" | "ip">): string =>
  JSON.stringify({ held: hold.kind, space: hold.space, family: hold.ip.includes(":") ? 6 : 4, ip: hold.ip } satisfies HoldMarker);

export const isHold = (value: AllocationRecord | HoldMarker): value is HoldMarker => "held" in value;

/** A value parsed with its schema; a value this store did not write is a storage fault on its key. */
export function valueOf<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(kv: KeyValue, schema: S): InferOutput<S> {
  let json: unknown;
  try {
    json = JSON.parse(kv.value);
  } catch {
    json = undefined;
  }
  const parsed = safeParse(schema, json);
  if (!parsed.success) throw new IpamError(ErrorCode.IoFailure, `etcd key ${kv.key} holds a value ipamd did not write (${json === undefined ? "not JSON" : firstIssue(parsed.issues)})`);
  return parsed.output;
}

const AddressValueSchema = union([HoldMarkerSchema, AllocationRecordSchema]);

/** An a/ or att/ value: a record or a hold marker. */
export const parseValue = (kv: KeyValue): AllocationRecord | HoldMarker => valueOf(kv, AddressValueSchema);

/** The allocation records among a/ or att/ values, hold markers left out. */
export const recordsOf = (kvs: KeyValue[]): AllocationRecord[] => kvs.map(parseValue).filter((r): r is AllocationRecord => !isHold(r));

/** Whether an a/ value is a hold, judged cheaply (the start-up replay reads every one). */
export const looksHeld = (value: string): boolean => value.startsWith('{"held"');

export const holdOf = (kv: KeyValue): Hold => valueOf(kv, HoldSchema);
export const bindingOf = (kv: KeyValue) => valueOf(kv, BindingSchema);

/**
 * An event as stored: without its id, which is made from etcd's revision of the key and the
 * event's place (n) in its transaction: unique across every daemon, growing in commit order.
 */
const StoredEventSchema = object({ ...omit(HistoryEventSchema, ["id"]).entries, n: number() });
export type StoredEvent = InferOutput<typeof StoredEventSchema>;

/**
 * An ev/ value: the first event of its commit, and the commit's other events in `more`. One
 * key per commit instead of one per event saves etcd a key per allocation (each key costs it
 * about as much as the allocation's a/ key). The first event stays where layout 3 has its only
 * event, so a daemon of that layout still reads the value (the first event of it) and nothing
 * it would migrate: the layout version stays 3.
 */
const StoredEventsSchema = object({ ...StoredEventSchema.entries, more: optional(array(StoredEventSchema)) });

/** The value of an ev/ key holding these events (in their commit's order; at least one). */
export function storedEvents([first, ...more]: StoredEvent[]): string {
  return JSON.stringify(more.length > 0 ? { ...first!, more } : first);
}

/** The events an ev/ key holds. */
export function eventsOf(kv: KeyValue): HistoryEvent[] {
  const { more, ...first } = valueOf(kv, StoredEventsSchema);
  return [first, ...(more ?? [])].map(({ n, ...event }) => ({ ...event, id: kv.createRevision * 1000 + n }));
}
