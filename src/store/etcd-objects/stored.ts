/**
 * How an object is kept in its etcd key: its JSON without what is the key's own (resourceVersion
 * and uid are the key's revisions), with a write id that tells one write from every other.
 */
import { safeParse } from "valibot";
import { ErrorCode, IpamError } from "../../errors.ts";
import { describeIssues } from "../../kube/errors.ts";
import { apiVersionOf, type ObjectOf, type ResourceType } from "../../kube/resources.ts";
import type { KeyValue } from "../etcd-client.ts";

/**
 * Metadata that is the key's, never stored from a writer's copy: resourceVersion (a write's
 * compare) and uid are its revisions. Neither managedFields nor creationTimestamp is kept (the
 * store reads neither, and keeping the first write's would cost each write a read).
 */
const SERVER_FIELDS = ["resourceVersion", "uid", "managedFields", "creationTimestamp"] as const;

/** A field of every stored value, unique to the write that stored it, dropped when read. */
const WRITE_ID = "ipamdWrite";

export type Meta = { name?: string | null; namespace?: string | null; resourceVersion?: string | null; uid?: string | null; labels?: Record<string, string> | null };

/** What is stored: the object without what is the key's, with an id of this write (see ownWrite). */
export function storedValue(type: ResourceType, object: { metadata: Meta }): string {
  const metadata: Record<string, unknown> = { ...object.metadata };
  for (const field of SERVER_FIELDS) delete metadata[field];
  return JSON.stringify({ ...object, apiVersion: apiVersionOf(type), kind: type.kind, metadata, [WRITE_ID]: crypto.randomUUID() });
}

/** A stored value as the object at its revisions (uid: the create revision, when known); throws when it is not an object's JSON. */
export function objectAt(value: string, createRevision: number, modRevision: number): { metadata: Meta } {
  const object = JSON.parse(value) as { metadata: Meta; [WRITE_ID]?: string };
  delete object[WRITE_ID];
  object.metadata.resourceVersion = String(modRevision);
  if (createRevision > 0) object.metadata.uid = `etcd-${createRevision}`;
  return object;
}

/** The object checked against its kind's schema, or what is wrong with it. */
export function checked<R extends ResourceType>(type: R, json: unknown): { object: ObjectOf<R> } | { invalid: string } {
  const parsed = safeParse(type.schema, json);
  return parsed.success ? { object: parsed.output as ObjectOf<R> } : { invalid: `${type.kind}: ${describeIssues(parsed.issues)}` };
}

/**
 * The key as found, when it holds exactly what this write sends (its write id included): the
 * write was applied by an earlier attempt of the same request (the etcd client sends a
 * transaction again when a member fails to answer it, e.g. a killed leader), so it did not
 * lose its compare to anyone. Two writers' values are never equal: a write id is random.
 */
export const ownWrite = (found: KeyValue[] | undefined, value: string): KeyValue | undefined => (found?.[0]?.value === value ? found[0] : undefined);

/** `a=b,c==d`: the label selectors the store asks with (equality only; anything else is refused, not ignored). */
export function labelTerms(selector: string | undefined): [string, string][] {
  if (!selector) return [];
  return selector.split(",").map((term) => {
    const match = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(term);
    if (!match) throw new IpamError(ErrorCode.Internal, `etcd objects: label selector ${JSON.stringify(selector)}: only key=value terms are supported`);
    return [match[1]!, match[2]!];
  });
}
