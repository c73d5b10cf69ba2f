/**
 * One watch request as an async stream of typed events. The API server sends one JSON event
 * per line; ERROR events carry a Status and end the watch as a typed error (410 → GoneError:
 * the resourceVersion is older than the server keeps, so the caller must list again).
 * An object that fails its schema becomes an INVALID event with its key and resourceVersion,
 * so a watcher reports it and moves past it instead of dying on it. Leaving the loop early
 * (break, return, an exception) aborts the request.
 */
import { looseObject, safeParse, string, unknown } from "valibot";
import { apiErrorFromStatus, describeIssues, KubeConnectionError, KubeInvalidResponseError } from "./errors.ts";
import { type ObjectOf, type ResourceType, resourcePath } from "./resources.ts";
import { AnyObjectSchema, StatusSchema } from "./schemas/meta.ts";
import type { KubeTransport } from "./transport.ts";

export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T; resourceVersion: string }
  /** The server's progress: nothing to report up to resourceVersion (or the initial list is complete). */
  | { type: "BOOKMARK"; resourceVersion: string; initialEventsEnd: boolean }
  | { type: "INVALID"; eventType: string; resourceVersion: string | undefined; namespace: string | undefined; name: string | undefined; message: string }
  /** A change the caller took as it came (WatchOptions.take): its object is not read here. */
  | { type: "TAKEN"; resourceVersion: string; namespace: string | undefined; name: string };

export interface WatchOptions<T = unknown> {
  /** A namespaced kind's namespace; none: every namespace. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Events after this version; none: from the server's most recent state (no history). */
  resourceVersion?: string;
  /** Ask for BOOKMARK events (default true): they keep a resumable resourceVersion fresh. */
  allowWatchBookmarks?: boolean;
  /** The server ends the watch after this long (it picks a random 30-60 minutes otherwise). */
  timeoutSeconds?: number;
  /** Stream the current objects as ADDED first, then a BOOKMARK with initialEventsEnd (a "watch-list"). */
  sendInitialEvents?: boolean;
  signal?: AbortSignal;
  /**
   * The object at this version if the caller holds it already (the answer to its own write, or
   * the write itself: `object` is the event's copy, unchecked), taken instead of checking that
   * copy against the schema again.
   */
  known?: (key: { namespace: string | undefined; name: string }, resourceVersion: string, object: unknown) => T | undefined;
  /**
   * Whether the caller takes this change of an object (a MODIFIED event) as it came, unchecked,
   * to read it only if and when it needs it: the event is then TAKEN, its object not checked
   * against the schema here. Asked after `known`.
   */
  take?: (key: { namespace: string | undefined; name: string }, resourceVersion: string, object: unknown) => boolean;
}

const WireEventSchema = looseObject({ type: string(), object: unknown() });
const INITIAL_EVENTS_END = "k8s.io/initial-events-end";
/** A watch the server should have ended by now is a dead connection (e.g. a silent network cut). */
const DEADLINE_GRACE_MS = 30_000;

export async function* watchObjects<R extends ResourceType>(transport: KubeTransport, type: R, options: WatchOptions<ObjectOf<R>> = {}): AsyncGenerator<WatchEvent<ObjectOf<R>>> {
  const abort = new AbortController();
  const signals = [abort.signal, ...(options.signal ? [options.signal] : [])];
  if (options.timeoutSeconds) signals.push(AbortSignal.timeout(options.timeoutSeconds * 1000 + DEADLINE_GRACE_MS));
  const path = resourcePath(type, { namespace: options.namespace });
  const res = await transport.open("GET", path, {
    query: {
      watch: 1,
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: options.allowWatchBookmarks ?? true,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      ...(options.sendInitialEvents ? { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" } : {}),
    },
    signal: AbortSignal.any(signals),
  });
  try {
    for await (const line of lines(res, `watch ${path}`)) yield parseEvent(type, line, path, options);
  } finally {
    abort.abort();
  }
}

async function* lines(res: Response, what: string): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield line;
        newline = buffer.indexOf("\n");
      }
    }
  } catch (error) {
    throw new KubeConnectionError(`${what}: the stream broke (${(error as Error).message})`);
  }
  if (buffer.trim()) yield buffer.trim();
}

function parseEvent<R extends ResourceType>(type: R, line: string, path: string, { known, take }: WatchOptions<ObjectOf<R>>): WatchEvent<ObjectOf<R>> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new KubeInvalidResponseError(`watch ${path}: a line is not JSON: ${line.slice(0, 200)}`);
  }
  const event = safeParse(WireEventSchema, json);
  if (!event.success) throw new KubeInvalidResponseError(`watch ${path}: not a watch event: ${describeIssues(event.issues)}`);
  const { type: eventType, object } = event.output;
  if (eventType === "ERROR") {
    const status = safeParse(StatusSchema, object);
    throw apiErrorFromStatus(status.success ? status.output : { message: "watch ERROR event without a Status" }, 500);
  }
  const meta = safeParse(AnyObjectSchema, object);
  const resourceVersion = meta.success ? (meta.output.metadata.resourceVersion ?? undefined) : undefined;
  if (eventType === "BOOKMARK") {
    if (!resourceVersion) throw new KubeInvalidResponseError(`watch ${path}: a BOOKMARK without a resourceVersion`);
    return { type: "BOOKMARK", resourceVersion, initialEventsEnd: meta.success && meta.output.metadata.annotations?.[INITIAL_EVENTS_END] === "true" };
  }
  const key = { namespace: meta.success ? (meta.output.metadata.namespace ?? undefined) : undefined, name: meta.success ? (meta.output.metadata.name ?? undefined) : undefined };
  if (eventType !== "ADDED" && eventType !== "MODIFIED" && eventType !== "DELETED") {
    return { type: "INVALID", eventType, resourceVersion, ...key, message: `unknown watch event type ${eventType}` };
  }
  const held = resourceVersion && key.name && eventType !== "DELETED" ? known?.({ namespace: key.namespace, name: key.name }, resourceVersion, object) : undefined;
  if (held) return { type: eventType, object: held, resourceVersion: resourceVersion! };
  if (resourceVersion && key.name && eventType === "MODIFIED" && take?.({ namespace: key.namespace, name: key.name }, resourceVersion, object)) {
    return { type: "TAKEN", resourceVersion, namespace: key.namespace, name: key.name };
  }
  const parsed = safeParse(type.schema, object);
  if (!parsed.success || !resourceVersion) {
    const message = parsed.success ? "no metadata.resourceVersion" : describeIssues(parsed.issues);
    return { type: "INVALID", eventType, resourceVersion, ...key, message: `${type.kind}: ${message}` };
  }
  return { type: eventType, object: parsed.output as ObjectOf<R>, resourceVersion };
}
