/**
 * Continuation tokens of the admin API's lists: where the next page starts, opaque to clients
 * (base64url of a small JSON tuple) and validated like any other input when they come back.
 */
import { integer, number, pipe, safeParse, string, tuple } from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";

/** After this allocation: [space, ip]. */
const AllocationTokenSchema = tuple([string(), string()]);
/** Older than this event: [at, id]. */
const HistoryTokenSchema = tuple([pipe(number(), integer()), pipe(number(), integer())]);

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

function decode<T>(token: string, schema: Parameters<typeof safeParse>[0], what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(token, "base64url").toString());
  } catch {
    json = undefined;
  }
  const parsed = safeParse(schema, json);
  if (!parsed.success) throw new IpamError(ErrorCode.InvalidNetworkConfig, `${what} is not a token this daemon gave out`);
  return parsed.output as T;
}

export const allocationToken = (r: { space: string; ip: string }): string => encode([r.space, r.ip]);

export function afterAllocation(token: string): { space: string; ip: string } {
  const [space, ip] = decode<[string, string]>(token, AllocationTokenSchema, "after");
  return { space, ip };
}

export const historyToken = (e: { at: number; id: number }): string => encode([e.at, e.id]);

export function beforeEvent(token: string): { at: number; id: number } {
  const [at, id] = decode<[number, number]>(token, HistoryTokenSchema, "before");
  return { at, id };
}
