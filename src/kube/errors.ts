/**
 * What can go wrong talking to an API server, as values a caller can branch on:
 * - KubeApiError: the server answered with a Status (or an HTTP error without one). One
 *   subclass per reason a caller acts on: NotFound (create instead), AlreadyExists (read
 *   instead), Conflict (re-read and retry), Gone (re-list), Forbidden/Unauthorized (RBAC,
 *   credentials: retrying will not help), Invalid/BadRequest (the object is wrong),
 *   TooManyRequests.
 * - KubeInvalidResponseError: the server's data does not fit our schema. Reported, never
 *   a crash: one odd object must not take a watcher down.
 * - KubeConnectionError: no answer at all (refused, TLS, timeout, a stream cut off).
 */
import { type BaseIssue, getDotPath, safeParse } from "valibot";
import { type Status, StatusSchema } from "./schemas/meta.ts";

export class KubeError extends Error {
  override name = "KubeError";
}

export class KubeApiError extends KubeError {
  override name = "KubeApiError";
  constructor(
    /** HTTP status (Status.code when the body had one). */
    readonly code: number,
    /** Status.reason, e.g. "NotFound", "Conflict", "Expired"; "" when the answer had none. */
    readonly reason: string,
    message: string,
    readonly status: Status | null = null,
  ) {
    super(message);
  }

  /** Seconds the server asked us to wait (429, 503), if it said. */
  get retryAfterSeconds(): number | undefined {
    return this.status?.details?.retryAfterSeconds ?? undefined;
  }
}

export class NotFoundError extends KubeApiError { override name = "NotFoundError"; }
export class AlreadyExistsError extends KubeApiError { override name = "AlreadyExistsError"; }
export class ConflictError extends KubeApiError { override name = "ConflictError"; }
/** 410: a resourceVersion or continue token older than the server keeps (reason Expired or Gone). */
export class GoneError extends KubeApiError { override name = "GoneError"; }
export class ForbiddenError extends KubeApiError { override name = "ForbiddenError"; }
export class UnauthorizedError extends KubeApiError { override name = "UnauthorizedError"; }
export class InvalidError extends KubeApiError { override name = "InvalidError"; }
/** 400: e.g. an unknown field under fieldValidation=Strict, or a body the server cannot decode. */
export class BadRequestError extends KubeApiError { override name = "BadRequestError"; }
export class TooManyRequestsError extends KubeApiError { override name = "TooManyRequestsError"; }

export class KubeInvalidResponseError extends KubeError {
  override name = "KubeInvalidResponseError";
}

export class KubeConnectionError extends KubeError {
  override name = "KubeConnectionError";
}

type ApiErrorClass = new (code: number, reason: string, message: string, status: Status | null) => KubeApiError;

/** Reasons first (409 is both Conflict and AlreadyExists), then the HTTP code. */
const BY_REASON: Record<string, ApiErrorClass> = {
  NotFound: NotFoundError,
  AlreadyExists: AlreadyExistsError,
  Conflict: ConflictError,
  Expired: GoneError,
  Gone: GoneError,
  Forbidden: ForbiddenError,
  Unauthorized: UnauthorizedError,
  Invalid: InvalidError,
  BadRequest: BadRequestError,
  TooManyRequests: TooManyRequestsError,
};
const BY_CODE: Record<number, ApiErrorClass> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  410: GoneError,
  422: InvalidError,
  429: TooManyRequestsError,
};

/** The typed error for a Status object (from an error answer or a watch ERROR event). */
export function apiErrorFromStatus(status: Status, httpCode: number): KubeApiError {
  const code = status.code ?? httpCode;
  const reason = status.reason ?? "";
  const Class = BY_REASON[reason] ?? BY_CODE[code] ?? KubeApiError;
  return new Class(code, reason, status.message ?? `HTTP ${code}${reason ? ` ${reason}` : ""}`, status);
}

/** The typed error for an HTTP error answer whose body may or may not be a Status. */
export function apiErrorFromResponse(httpCode: number, body: unknown, what: string): KubeApiError {
  const parsed = safeParse(StatusSchema, body);
  const status = parsed.success && parsed.output.kind === "Status" ? parsed.output : { code: httpCode };
  const error = apiErrorFromStatus(status, httpCode);
  error.message = `${what}: ${error.message}`;
  return error;
}

/** "field.path: message" for the first issue, as every boundary in ipamd reports it. */
export function describeIssues(issues: readonly BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (!issue) return "invalid";
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
  return `${getDotPath(issue) ?? "(top level)"}: ${issue.message}${more}`;
}
