/**
 * How admin verbs talk: calls to the daemon over its socket (`--socket` to choose), and output
 * written in order, each piece before the next — a verb's last lines must not be lost when the
 * process exits with a pipe still full (a streamed list is many pieces).
 */
import type { BaseIssue, BaseSchema, InferOutput } from "valibot";
import { callDaemon } from "../cni/client.ts";
import { DEFAULT_SOCKET } from "../protocol.ts";

/** Admin calls may walk the whole store (gc, import): give them longer than the plugin's 2.5 s. */
const ADMIN_TIMEOUT_MS = 120_000;

export type Flags = Record<string, string | boolean | undefined>;
type Schema = BaseSchema<unknown, unknown, BaseIssue<unknown>>;

let written: Promise<unknown> = Promise.resolve();

export const out = (text: string): void => {
  written = written.then(() => Bun.write(Bun.stdout, text));
};

/** Resolves once everything `out` was given is written. */
export const flushed = (): Promise<unknown> => written;

export function call<S extends Schema>(flags: Flags, path: string, body: unknown, schema: S): Promise<InferOutput<S>> {
  return callDaemon((flags.socket as string | undefined) ?? DEFAULT_SOCKET, path, body, schema, ADMIN_TIMEOUT_MS);
}

export const query = (params: Record<string, string | boolean | undefined>) => {
  const entries = Object.entries(params).filter((e): e is [string, string] => typeof e[1] === "string");
  return entries.length ? `?${new URLSearchParams(entries)}` : "";
};
