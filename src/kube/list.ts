/**
 * Lists: one page, or every page at one resourceVersion. Items are checked one by one; an
 * item that fails its schema is reported in `invalid` (with its key) and left out, so one
 * odd object does not hide the others from a caller that can use them.
 */
import { array, looseObject, nullish, safeParse, unknown } from "valibot";
import { describeIssues, GoneError, KubeInvalidResponseError } from "./errors.ts";
import { type ObjectOf, type ResourceType, resourcePath } from "./resources.ts";
import { AnyObjectSchema, ListMetaSchema } from "./schemas/meta.ts";
import type { KubeTransport } from "./transport.ts";

export interface ListOptions {
  /** A namespaced kind's namespace; none: every namespace. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** At most this many items; the page's `continue` token fetches the next page. */
  limit?: number;
  continue?: string;
  /** "0": any version the server has cached (cheap, may be stale); none: the latest (consistent). */
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
  signal?: AbortSignal;
}

export interface InvalidObject {
  namespace: string | undefined;
  name: string | undefined;
  resourceVersion: string | undefined;
  message: string;
}

export interface ListPage<T> {
  items: T[];
  invalid: InvalidObject[];
  /** The collection's version: watch from here to see every change after this list. */
  resourceVersion: string;
  /** Set when more pages follow. */
  continue?: string;
  remainingItemCount?: number;
}

const WireListSchema = looseObject({ metadata: nullish(ListMetaSchema), items: nullish(array(unknown())) });

export async function listPage<R extends ResourceType>(transport: KubeTransport, type: R, options: ListOptions): Promise<ListPage<ObjectOf<R>>> {
  const path = resourcePath(type, { namespace: options.namespace });
  const { namespace: _, signal, ...query } = options;
  const json = await transport.request("GET", path, { query, signal });
  const list = safeParse(WireListSchema, json);
  if (!list.success) throw new KubeInvalidResponseError(`GET ${path}: not a list: ${describeIssues(list.issues)}`);
  const resourceVersion = list.output.metadata?.resourceVersion;
  if (!resourceVersion) throw new KubeInvalidResponseError(`GET ${path}: the list has no resourceVersion`);
  const page: ListPage<ObjectOf<R>> = { items: [], invalid: [], resourceVersion };
  if (list.output.metadata?.continue) page.continue = list.output.metadata.continue;
  if (typeof list.output.metadata?.remainingItemCount === "number") page.remainingItemCount = list.output.metadata.remainingItemCount;
  for (const item of list.output.items ?? []) {
    const parsed = safeParse(type.schema, item);
    if (parsed.success) {
      page.items.push(parsed.output as ObjectOf<R>);
      continue;
    }
    const meta = safeParse(AnyObjectSchema, item);
    const m = meta.success ? meta.output.metadata : undefined;
    page.invalid.push({ namespace: m?.namespace ?? undefined, name: m?.name ?? undefined, resourceVersion: m?.resourceVersion ?? undefined, message: `${type.kind}: ${describeIssues(parsed.issues)}` });
  }
  return page;
}

/** How often an expired continue token may restart the list before it is given up paged. */
const RESTARTS = 3;

/**
 * Follows `continue` to the end. Pages share the first page's resourceVersion; if the server
 * compacted past it mid-way (410 on a continue token), the list starts over, and after
 * RESTARTS such tries it is fetched in one piece, which cannot expire.
 */
export async function listAllPages<R extends ResourceType>(transport: KubeTransport, type: R, options: ListOptions & { pageSize?: number }): Promise<ListPage<ObjectOf<R>>> {
  const { pageSize = 500, ...base } = options;
  for (let attempt = 0; ; attempt++) {
    const limit = attempt < RESTARTS ? pageSize : undefined;
    try {
      let page = await listPage(transport, type, { ...base, limit, continue: undefined });
      const all: ListPage<ObjectOf<R>> = { items: page.items, invalid: page.invalid, resourceVersion: page.resourceVersion };
      while (page.continue) {
        // The token carries the version; the server refuses a resourceVersion beside it.
        page = await listPage(transport, type, { ...base, resourceVersion: undefined, resourceVersionMatch: undefined, limit, continue: page.continue });
        all.items.push(...page.items);
        all.invalid.push(...page.invalid);
      }
      return all;
    } catch (error) {
      if (!(error instanceof GoneError) || limit === undefined) throw error;
    }
  }
}
