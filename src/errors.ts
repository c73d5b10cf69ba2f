import { type BaseIssue, getDotPath } from "valibot";

/**
 * Errors are values with CNI codes (DESIGN rule 6). The same codes travel from the core,
 * through the daemon's structured error bodies, to the plugin's CNI error object, so a
 * runtime sees the spec's meaning whichever side failed.
 */
export const ErrorCode = {
  /** Incompatible CNI version. */
  IncompatibleVersion: 1,
  /** Unsupported field in the network configuration. */
  UnsupportedField: 2,
  /** Container unknown or does not exist (CHECK of a vanished attachment). */
  UnknownContainer: 3,
  /** Invalid or missing CNI_* environment variables. */
  InvalidEnvironment: 4,
  /** I/O failure. */
  IoFailure: 5,
  /** Failed to decode content (stdin or a request body is not the expected JSON). */
  DecodingFailure: 6,
  /** Invalid network configuration. */
  InvalidNetworkConfig: 7,
  /** Try again later: the daemon is unreachable or not answering. */
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD requests. */
  NotAvailable: 50,
  /** STATUS: not available, and existing containers may have limited connectivity. */
  NotAvailableLimitedConnectivity: 51,
  /** ipamd's own codes start at 100. */
  PoolExhausted: 100,
  AddressInUse: 101,
  AddressNotInPool: 102,
  NotFound: 103,
  /** A mutating admin call on a listener that only may read (TCP without client certificates). */
  Forbidden: 104,
  /** A namespace holds its pool's maxPerNamespace addresses (every fallback pool's, if any). */
  NamespaceLimitReached: 105,
  /** A pool this pod may not use: scoped to other namespaces or to other nodes. */
  PoolNotAllowed: 106,
  Internal: 110,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** "field.path: message" of a failed parse's first issue: the one line every boundary reports. */
export function firstIssue(issues: readonly BaseIssue<unknown>[]): string {
  const issue = issues[0]!;
  return `${getDotPath(issue) ?? "(top level)"}: ${issue.message}`;
}

export class IpamError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    // One line: runtimes print msg verbatim into events and logs.
    super(msg.replace(/\s*\n\s*/g, " "));
    this.name = "IpamError";
  }

  toJSON(): { code: number; msg: string; details?: string } {
    return this.details ? { code: this.code, msg: this.message, details: this.details } : { code: this.code, msg: this.message };
  }
}

/** Turns anything thrown into an IpamError without leaking a stack trace into msg. */
export function toIpamError(err: unknown, fallbackCode: number = ErrorCode.Internal): IpamError {
  if (err instanceof IpamError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new IpamError(fallbackCode, msg || "internal error");
}
