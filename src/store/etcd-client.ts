/**
 * A small etcd v3 client over its JSON gateway (`/v3/kv/*`, `/v3/lease/*`) using fetch, with
 * TLS client certificates. It avoids a gRPC dependency: the gateway is part of every etcd
 * server, speaks plain HTTP/1.1, and a transaction is one request. Requests go to one
 * endpoint at a time and move on to the next when one fails, so losing a member only costs
 * a retry; losing quorum surfaces as an error within the request deadline.
 */
import { array, type BaseIssue, type BaseSchema, boolean, type InferOutput, object, optional, safeParse, string, unknown } from "valibot";
import { ErrorCode, firstIssue, IpamError } from "../errors.ts";
import { StorageFault } from "./storage-fault.ts";

export interface EtcdTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string | undefined;
}

/** rangeEnd: the condition holds for every key from key up to (not including) rangeEnd. */
export type Compare =
  | { key: string; target: "CREATE"; result: "EQUAL" | "GREATER" | "LESS"; create_revision: number; rangeEnd?: string }
  | { key: string; target: "MOD"; result: "EQUAL" | "GREATER" | "LESS"; mod_revision: number }
  | { key: string; target: "VALUE"; result: "EQUAL"; value: string };

export type Op =
  | { put: { key: string; value: string; lease?: string } }
  | { delete: { key: string; rangeEnd?: string } }
  | { range: { key: string; rangeEnd?: string } };

export interface TxnResult {
  succeeded: boolean;
  /** Times the transaction went out (see EtcdClient.call): more than once, a failed compare may be its own earlier attempt's doing. */
  sends: number;
  /** The kvs of each range op, in order (empty for puts and deletes). */
  ranges: KeyValue[][];
  revision: number;
}

const enc = (s: string) => Buffer.from(s, "utf8").toString("base64");
const dec = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : "");

/**
 * The key just past every key with this prefix: etcd's range_end for a prefix scan. Keys are
 * ASCII here (names are validated, addresses and IDs are ASCII), so bumping the last
 * character is bumping the last byte.
 */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0x7f) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return "\0";
}

/** The gateway's JSON (proto3: int64 as strings, bytes as base64, empty fields left out). */
export const WireKvSchema = object({ key: string(), value: optional(string()), create_revision: optional(string()), mod_revision: optional(string()), lease: optional(string()) });
const rangeResponse = object({ kvs: optional(array(WireKvSchema)), count: optional(string()), header: optional(object({ revision: optional(string()) })) });
const txnResponse = object({
  header: optional(object({ revision: optional(string()) })),
  succeeded: optional(boolean()),
  // One answer per operation; only a range's is read, so only a range's is parsed (txnRanges):
  // a commit's ~120 put answers parsed one by one took 4% of a daemon's CPU under load.
  responses: optional(array(unknown())),
});

/** The keys each range operation of a transaction answered ([] for any other operation). */
function txnRanges(responses: unknown[]): KeyValue[][] {
  return responses.map((r) => {
    const range = (r as { response_range?: unknown } | null)?.response_range;
    return range === undefined ? [] : (parseResponse(rangeResponse, range, "txn range answer").kvs ?? []).map(toKv);
  });
}

function parseResponse<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(schema: S, json: unknown, what: string): InferOutput<S> {
  const parsed = safeParse(schema, json);
  if (!parsed.success) throw new IpamError(ErrorCode.Internal, `etcd answered an unexpected ${what}: ${firstIssue(parsed.issues)}`);
  return parsed.output;
}

export function toKv(kv: InferOutput<typeof WireKvSchema>): KeyValue {
  return { key: dec(kv.key), value: dec(kv.value), createRevision: Number(kv.create_revision ?? 0), modRevision: Number(kv.mod_revision ?? 0), lease: kv.lease };
}

const wireOp = (op: Op) => {
  if ("put" in op) return { request_put: { key: enc(op.put.key), value: enc(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  if ("delete" in op) return { request_delete_range: { key: enc(op.delete.key), ...(op.delete.rangeEnd ? { range_end: enc(op.delete.rangeEnd) } : {}) } };
  return { request_range: { key: enc(op.range.key), ...(op.range.rangeEnd ? { range_end: enc(op.range.rangeEnd) } : {}) } };
};

const wireCompare = (c: Compare) => {
  const base = { key: enc(c.key), target: c.target, result: c.result };
  if (c.target === "CREATE") return { ...base, create_revision: String(c.create_revision), ...(c.rangeEnd ? { range_end: enc(c.rangeEnd) } : {}) };
  if (c.target === "MOD") return { ...base, mod_revision: String(c.mod_revision) };
  return { ...base, value: enc(c.value) };
};

/** Pause between passes over the members when none could serve: an election takes a few hundred ms. */
const PASS_BACKOFF_MS = 50;

export class EtcdClient {
  private current = 0;
  /** HTTP requests sent so far, retries on other members included: tests count round trips with it. */
  requests = 0;
  /** Keys answered by ranges so far (plain or in transactions): what a query cost etcd to read. */
  keysRead = 0;

  constructor(
    private readonly endpoints: string[],
    private readonly tls: EtcdTls = {},
    /** Per request; a quorum loss must become "try again later" well inside the plugin's 2.5 s. */
    private readonly timeoutMs = 1500,
  ) {
    if (endpoints.length === 0) throw new IpamError(ErrorCode.InvalidNetworkConfig, "no etcd endpoints given");
  }

  /**
   * Posts to the gateway, moving to the next endpoint when one fails, round the members again
   * until the deadline: while the survivors of a killed leader elect a new one, each answers
   * "no leader" at once, and one pass over all would give up long before an election ends.
   */
  async call(path: string, body: unknown, deadlineMs = this.timeoutMs): Promise<any> {
    return (await this.send(path, body, deadlineMs)).json;
  }

  /** As call, with how many times the request went out: more than once, an earlier one may have been applied. */
  private async send(path: string, body: unknown, deadlineMs: number): Promise<{ json: any; sends: number }> {
    const deadline = Date.now() + deadlineMs;
    let sends = 0;
    // With other members to go to, half the deadline at most per attempt: a proposal a
    // follower forwarded to a leader that just died is lost, not refused, and waits for etcd's
    // own 6 s timeout; abandoned at half time, it is sent again once the survivors have a
    // leader. A retried transaction is safe: if the first attempt was applied after all, its
    // comparisons fail and the commit finds its own writes there (etcd/commit.ts settles them
    // as done). With one endpoint, a slow answer (a member replaying its log after
    // a restart) is waited for: there is nowhere else to ask.
    const attemptMs = this.endpoints.length > 1 ? Math.ceil(deadlineMs / 2) : deadlineMs;
    let lastError = "";
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && attempt % this.endpoints.length === 0) await Bun.sleep(Math.min(PASS_BACKOFF_MS, Math.max(0, deadline - Date.now())));
      const endpoint = this.endpoints[(this.current + attempt) % this.endpoints.length]!;
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        this.requests++;
        sends++;
        const res = await fetch(`${endpoint}${path}`, {
          method: "POST",
          body: JSON.stringify(body),
          headers: { "content-type": "application/json" },
          signal: AbortSignal.timeout(Math.min(left, attemptMs)),
          ...(endpoint.startsWith("https:") ? { tls: { ...this.tls, rejectUnauthorized: true } } : {}),
        });
        const json = (await res.json()) as any;
        if (!res.ok || json?.error || json?.code) {
          lastError = `${endpoint}: ${json?.message ?? json?.error ?? `HTTP ${res.status}`}`;
          // gRPC UNAVAILABLE (14) or DEADLINE_EXCEEDED (4): this member cannot serve, try the
          // next. Anything else (a malformed or too large request) would fail everywhere.
          if (json?.code !== undefined && json.code !== 14 && json.code !== 4) throw new IpamError(ErrorCode.Internal, `etcd refused the request: ${lastError}`);
          continue;
        }
        this.current = (this.current + attempt) % this.endpoints.length;
        return { json, sends };
      } catch (err) {
        if (err instanceof IpamError) throw err;
        lastError = `${endpoint}: ${(err as Error).message}`;
      }
    }
    throw new StorageFault(this.endpoints.join(","), "etcd is not available", ErrorCode.TryAgainLater, lastError || "deadline passed");
  }

  /**
   * Opens a streaming request (a watch) on the member in use, or the next that takes it: its
   * answer's body is the stream. Failing on every member is a StorageFault, code 11.
   */
  async stream(path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    let lastError = "";
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const endpoint = this.endpoints[(this.current + attempt) % this.endpoints.length]!;
      try {
        this.requests++;
        const res = await fetch(`${endpoint}${path}`, {
          method: "POST",
          body: JSON.stringify(body),
          // etcd's require-leader: a member cut off from its leader ends the stream, so the
          // watch moves to a member that has one instead of going silent.
          headers: { "content-type": "application/json", "grpc-metadata-hasleader": "true" },
          signal,
          ...(endpoint.startsWith("https:") ? { tls: { ...this.tls, rejectUnauthorized: true } } : {}),
        });
        if (res.ok && res.body) {
          this.current = (this.current + attempt) % this.endpoints.length;
          return res;
        }
        await res.body?.cancel();
        lastError = `${endpoint}: HTTP ${res.status}`;
      } catch (err) {
        if (signal.aborted) throw err;
        lastError = `${endpoint}: ${(err as Error).message}`;
      }
    }
    throw new StorageFault(this.endpoints.join(","), "etcd is not available", ErrorCode.TryAgainLater, lastError);
  }

  /**
   * Every key with this prefix (the first `limit`), and the revision they are of (a watch from
   * the next one sees every later change). Read a page of `pageSize` keys per request, every
   * page at the first one's revision, so each request stays small and inside its deadline
   * however many keys there are; the pages are one consistent read.
   */
  async rangePrefixAt(prefix: string, limit?: number, pageSize = 500): Promise<{ kvs: KeyValue[]; revision: number }> {
    const end = enc(prefixEnd(prefix));
    const kvs: KeyValue[] = [];
    let revision = 0;
    for (let from = prefix; ; ) {
      const size = limit ? Math.min(pageSize, limit - kvs.length) : pageSize;
      const json = parseResponse(rangeResponse, await this.call("/v3/kv/range", { key: enc(from), range_end: end, limit: String(size), ...(revision ? { revision: String(revision) } : {}) }), "range response");
      revision ||= Number(json.header?.revision ?? 0);
      const page = (json.kvs ?? []).map(toKv);
      kvs.push(...page);
      this.keysRead += page.length;
      if (page.length < size || (limit && kvs.length >= limit)) return { kvs, revision };
      from = `${page[page.length - 1]!.key}\0`;
    }
  }

  /** descending: newest key first (with limit, the last keys of the range). */
  async range(key: string, rangeEnd?: string, options: { keysOnly?: boolean; limit?: number; descending?: boolean } = {}): Promise<KeyValue[]> {
    const body = {
      key: enc(key),
      ...(rangeEnd ? { range_end: enc(rangeEnd) } : {}),
      ...(options.keysOnly ? { keys_only: true } : {}),
      ...(options.limit ? { limit: String(options.limit) } : {}),
      ...(options.descending ? { sort_order: "DESCEND", sort_target: "KEY" } : {}),
    };
    const json = parseResponse(rangeResponse, await this.call("/v3/kv/range", body), "range response");
    const kvs = (json.kvs ?? []).map(toKv);
    this.keysRead += kvs.length;
    return kvs;
  }

  /** How many keys have this prefix, and the revision the count is of (etcd reads no values). */
  async countPrefix(prefix: string): Promise<{ count: number; revision: number }> {
    const json = parseResponse(rangeResponse, await this.call("/v3/kv/range", { key: enc(prefix), range_end: enc(prefixEnd(prefix)), count_only: true }), "range response");
    return { count: Number(json.count ?? 0), revision: Number(json.header?.revision ?? 0) };
  }

  rangePrefix(prefix: string, options: { keysOnly?: boolean; limit?: number; descending?: boolean } = {}): Promise<KeyValue[]> {
    return this.range(prefix, prefixEnd(prefix), options);
  }

  /**
   * One transaction. A read-only one (no compares, only range ops) is a linearizable
   * multi-key read: `ranges[i]` answers `success[i]`.
   */
  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const { json: answer, sends } = await this.send("/v3/kv/txn", { compare: compare.map(wireCompare), success: success.map(wireOp), failure: failure.map(wireOp) }, this.timeoutMs);
    const json = parseResponse(txnResponse, answer, "txn response");
    const succeeded = json.succeeded === true;
    const responses = json.responses ?? [];
    // Callers hand each op's answer to whoever asked for it: a short answer must not shift them.
    const sent = succeeded ? success.length : failure.length;
    if (responses.length !== sent) throw new IpamError(ErrorCode.Internal, `etcd answered ${responses.length} of ${sent} txn operations`);
    const ranges = txnRanges(responses);
    for (const kvs of ranges) this.keysRead += kvs.length;
    return {
      succeeded,
      sends,
      ranges,
      revision: Number(json.header?.revision ?? 0),
    };
  }

  async put(key: string, value: string): Promise<void> {
    await this.call("/v3/kv/put", { key: enc(key), value: enc(value) });
  }

  async deletePrefix(prefix: string): Promise<void> {
    await this.call("/v3/kv/deleterange", { key: enc(prefix), range_end: enc(prefixEnd(prefix)) });
  }

  async leaseGrant(ttlSeconds: number): Promise<string> {
    return String((await this.call("/v3/lease/grant", { TTL: String(ttlSeconds) })).ID);
  }

  async leaseKeepAlive(id: string): Promise<boolean> {
    const json = await this.call("/v3/lease/keepalive", { ID: id });
    return Number(json.result?.TTL ?? 0) > 0;
  }
}
