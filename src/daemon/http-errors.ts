/**
 * How the daemon turns failures into answers: every error is a JSON body with the CNI code,
 * a one-line msg and optional details (protocol.ts ErrorBody), with an HTTP status that
 * tells a generic client roughly what happened. The daemon logs and keeps serving.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type BaseIssue, safeParse, type BaseSchema, type InferOutput } from "valibot";
import { ErrorCode, firstIssue, IpamError, toIpamError } from "../errors.ts";
import { MAX_BODY_BYTES } from "../protocol.ts";

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
      return 403;
    case ErrorCode.PoolExhausted:
    case ErrorCode.AddressInUse:
      return 409;
    case ErrorCode.Internal:
    case ErrorCode.IoFailure:
      return 500;
    default:
      return 400;
  }
}

export function errorResponse(c: Context, err: unknown): Response {
  const e = toIpamError(err);
  return c.json(e.toJSON(), httpStatusOf(e.code));
}

/** Reads and validates a JSON body; bad bodies become IpamErrors with the decode/config codes. */
export async function readBody<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(c: Context, schema: S): Promise<InferOutput<S>> {
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > MAX_BODY_BYTES) throw new IpamError(ErrorCode.DecodingFailure, `request body over ${MAX_BODY_BYTES} bytes`);
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw new IpamError(ErrorCode.DecodingFailure, `request body over ${MAX_BODY_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new IpamError(ErrorCode.DecodingFailure, "request body is not valid JSON");
  }
  const parsed = safeParse(schema, json);
  if (!parsed.success) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `invalid request: ${firstIssue(parsed.issues)}`);
  }
  return parsed.output;
}
