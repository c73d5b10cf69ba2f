/**
 * How the daemon turns failures into answers: every error is a JSON body with the CNI code,
 * a one-line msg and optional details (protocol.ts ErrorBody), with an HTTP status that
 * tells a generic client roughly what happened. The daemon logs and keeps serving.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type BaseIssue, safeParse, type BaseSchema, type InferOutput } from "valibot";
import { ErrorCode, firstIssue, IpamError, toIpamError } from "../errors.ts";
import { ENVIRONMENT_FIELDS, type ErrorBody, MAX_BODY_BYTES } from "../protocol.ts";

export function httpStatusOf(code: number): ContentfulStatusCode {
  switch (code) {
    case ErrorCode.TryAgainLater:
    case ErrorCode.NotAvailable:
    case ErrorCode.NotAvailableLimitedConnectivity:
      return 503;
    case ErrorCode.UnknownContainer:
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.Forbidden:
    case ErrorCode.PoolNotAllowed:
      return 403;
    case ErrorCode.PoolExhausted:
    case ErrorCode.NamespaceLimitReached:
    case ErrorCode.AddressInUse:
      return 409;
    case ErrorCode.Internal:
    case ErrorCode.IoFailure:
      return 500;
    default:
      return 400;
  }
}

/** Code 6 like any undecodable body, but HTTP 413 so a generic client knows what to shorten. */
class BodyTooLarge extends IpamError {
  constructor(limit: number) {
    super(ErrorCode.DecodingFailure, `request body over ${limit} bytes`);
  }
}

/** A failure's answer: the JSON body (protocol.ts ErrorBody) and its HTTP status. */
export function errorAnswer(err: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  const e = toIpamError(err);
  return { status: e instanceof BodyTooLarge ? 413 : httpStatusOf(e.code), body: e.toJSON() };
}

export function errorResponse(c: Context, err: unknown): Response {
  const { status, body } = errorAnswer(err);
  return c.json(body, status);
}

/**
 * What Bun.serve itself accepts (maxRequestBodySize): a backstop above MAX_BODY_BYTES, so the
 * limit is ours to enforce with a structured answer. Bun's own refusal is a bare 413 that the
 * app never sees; a chunked body crosses our limit at most one socket read (512 KiB) past it,
 * well before Bun's. A body no route reads can still not pile up beyond this.
 */
export const BODY_BACKSTOP_BYTES = 2 * MAX_BODY_BYTES;

/**
 * The body as text, at most `limit` bytes of it (MAX_BODY_BYTES unless a route says otherwise).
 * A declared length over the limit is refused before reading; a chunked body is counted as it
 * arrives and refused at the limit, so a huge one is never buffered. A body that breaks off is
 * the client's failure, not a bug.
 */
export async function readLimited(req: Request, limit = MAX_BODY_BYTES): Promise<string> {
  const overLimit = () => new BodyTooLarge(limit);
  const declared = req.headers.get("content-length");
  if (Number(declared ?? 0) > limit) throw overLimit();
  // A declared length within the limit is read whole: Bun has already bounded it, and the
  // stream reader below costs a quarter of a busy daemon's CPU at hundreds of clients.
  if (declared !== null) return readWhole(req);
  const body = req.body;
  if (!body) return "";
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        reader.cancel().catch(() => undefined);
        throw overLimit();
      }
      parts.push(value);
    }
  } catch (err) {
    if (err instanceof IpamError) throw err;
    const msg = (err as Error)?.message ?? String(err);
    if (/maxRequestBodySize/.test(msg)) throw overLimit();
    throw new IpamError(ErrorCode.DecodingFailure, `request body could not be read: ${msg}`);
  }
  return new TextDecoder().decode(Buffer.concat(parts, size));
}

async function readWhole(req: Request): Promise<string> {
  try {
    return await req.text();
  } catch (err) {
    throw new IpamError(ErrorCode.DecodingFailure, `request body could not be read: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Reads a JSON body; one that is not JSON is code 6. */
export async function readJson(req: Request): Promise<unknown> {
  const text = await readLimited(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new IpamError(ErrorCode.DecodingFailure, "request body is not valid JSON");
  }
}

/** Reads and validates a JSON body; bad bodies become IpamErrors with the decode/config codes. */
export async function readBody<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(c: Context, schema: S): Promise<InferOutput<S>> {
  return validRequest(schema, await readJson(c.req.raw));
}

/**
 * A request as a schema accepts it, whether it came on the socket or from a command the daemon
 * runs for a plugin (cni-command.ts): the same refusals, codes and messages either way.
 */
export function validRequest<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(schema: S, json: unknown): InferOutput<S> {
  const parsed = safeParse(schema, json);
  if (!parsed.success) {
    // An attachment's identifiers come from the runtime's CNI_* variables: as the plugin does,
    // their refusal is code 4 with the plugin's words; anything else is a bad request (7).
    const issue = parsed.issues[0]!;
    const field = issue.path?.[issue.path.length - 1]?.key;
    if (typeof field === "string" && ENVIRONMENT_FIELDS.has(field) && issue.path!.length === 1) throw new IpamError(ErrorCode.InvalidEnvironment, issue.message);
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `invalid request: ${firstIssue(parsed.issues)}`);
  }
  return parsed.output;
}
