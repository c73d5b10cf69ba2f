/**
 * An etcd watch stream (the gateway's, one JSON message per line) as the watch events an
 * informer takes: ADDED or MODIFIED by the key's revisions, DELETED by its key, BOOKMARK for a
 * progress notice, GoneError when the revision asked for is compacted away. The caller's
 * `known` and `take` are asked before an object is checked, as kube/watch.ts asks them.
 */
import { array, boolean, type InferOutput, looseObject, object, optional, safeParse, string } from "valibot";
import { ErrorCode } from "../../errors.ts";
import { describeIssues, GoneError } from "../../kube/errors.ts";
import type { ObjectOf, ResourceType } from "../../kube/resources.ts";
import type { WatchEvent, WatchOptions } from "../../kube/watch.ts";
import { toKv, WireKvSchema } from "../etcd-client.ts";
import { StorageFault } from "../storage-fault.ts";
import { checked, objectAt } from "./stored.ts";

/** One message of a watch stream (the gateway's JSON: int64 as strings, default values left out). */
const WatchMessageSchema = object({
  result: optional(
    looseObject({
      header: optional(looseObject({ revision: optional(string()) })),
      created: optional(boolean()),
      canceled: optional(boolean()),
      cancel_reason: optional(string()),
      compact_revision: optional(string()),
      // type is absent for a PUT: proto3 leaves out an enum's first value.
      events: optional(array(looseObject({ type: optional(string()), kv: WireKvSchema }))),
    }),
  ),
  error: optional(looseObject({ message: optional(string()) })),
});
type WatchResult = NonNullable<InferOutput<typeof WatchMessageSchema>["result"]>;

/** The events of a watch stream's body, until it ends or `signal` stops it; `heard` is told of each message. */
export async function* watchEvents<R extends ResourceType>(type: R, body: ReadableStream<Uint8Array>, signal: AbortSignal, server: string, options: WatchOptions<ObjectOf<R>>, heard: () => void): AsyncGenerator<WatchEvent<ObjectOf<R>>> {
  for await (const line of lines(body, signal, server)) {
    heard();
    const message = safeParse(WatchMessageSchema, jsonOf(line));
    if (!message.success) throw new StorageFault(server, "etcd's watch answered what ipamd cannot read", ErrorCode.IoFailure, describeIssues(message.issues));
    // An error in the stream: the member ended it (it lost its leader, say).
    if (!message.output.result) throw new StorageFault(server, "etcd ended the watch", ErrorCode.TryAgainLater, message.output.error?.message ?? line.slice(0, 200));
    yield* events(type, message.output.result, server, options);
  }
}

function* events<R extends ResourceType>(type: R, result: WatchResult, server: string, options: WatchOptions<ObjectOf<R>>): Generator<WatchEvent<ObjectOf<R>>> {
  if (result.compact_revision && result.compact_revision !== "0") throw new GoneError(410, "Expired", `etcd has compacted the revisions up to ${result.compact_revision}`);
  if (result.canceled) throw new StorageFault(server, "etcd ended the watch", ErrorCode.TryAgainLater, result.cancel_reason);
  const changes = result.events ?? [];
  // A progress notice: nothing changed up to its revision.
  if (changes.length === 0 && !result.created && result.header?.revision) yield { type: "BOOKMARK", resourceVersion: result.header.revision, initialEventsEnd: false };
  for (const change of changes) {
    const kv = toKv(change.kv);
    const resourceVersion = String(kv.modRevision);
    const name = kv.key.slice(kv.key.lastIndexOf("/") + 1);
    const key = { namespace: options.namespace, name };
    if (change.type === "DELETE") {
      // Its name is all a watcher needs of a deleted object (an informer drops its copy by it).
      yield { type: "DELETED", object: { metadata: { name, namespace: options.namespace, resourceVersion } } as ObjectOf<R>, resourceVersion };
      continue;
    }
    const eventType = kv.createRevision === kv.modRevision ? "ADDED" : "MODIFIED";
    let json: unknown;
    try {
      json = objectAt(kv.value, kv.createRevision, kv.modRevision);
    } catch {
      yield { type: "INVALID", eventType, resourceVersion, ...key, message: `${type.kind}: not JSON` };
      continue;
    }
    const held = options.known?.(key, resourceVersion, json);
    if (held) {
      yield { type: eventType, object: held, resourceVersion };
      continue;
    }
    if (eventType === "MODIFIED" && options.take?.(key, resourceVersion, json)) {
      yield { type: "TAKEN", resourceVersion, ...key };
      continue;
    }
    const parsed = checked(type, json);
    if ("object" in parsed) yield { type: eventType, object: parsed.object, resourceVersion };
    else yield { type: "INVALID", eventType, resourceVersion, ...key, message: parsed.invalid };
  }
}

const jsonOf = (line: string): unknown => {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
};

/** The stream's lines. */
async function* lines(body: ReadableStream<Uint8Array>, signal: AbortSignal, server: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = body.getReader();
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal.aborted) return;
        throw new StorageFault(server, "etcd's watch broke", ErrorCode.TryAgainLater, (err as Error).message);
      }
      if (chunk.done) return;
      buffer += decoder.decode(chunk.value, { stream: true });
      for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield line;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
