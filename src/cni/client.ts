/**
 * The socket client of the plugin (when it runs a command itself) and of the admin CLI. A
 * daemon that cannot be reached or does not answer within CALL_TIMEOUT_MS becomes code 11
 * (try again later), well inside the 3 s a runtime is promised; an answer with an error body
 * becomes that error, code and all.
 */
import { type BaseIssue, type BaseSchema, type InferOutput, safeParse } from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { ErrorBodySchema } from "../protocol.ts";
import { CALL_TIMEOUT_MS, unreachableMessage } from "../protocol-command.ts";

export { CALL_TIMEOUT_MS } from "../protocol-command.ts";

export async function callDaemon<S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(
  socket: string,
  path: string,
  body: unknown,
  schema: S,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<InferOutput<S>> {
  let res: Response;
  let json: unknown;
  try {
    res = await fetch(`http://ipamd${path}`, {
      unix: socket,
      method: body === undefined ? "GET" : "POST",
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    json = await res.json();
  } catch (err) {
    throw new IpamError(ErrorCode.TryAgainLater, unreachableMessage(socket, err, timeoutMs));
  }
  if (!res.ok) {
    const error = safeParse(ErrorBodySchema, json);
    if (error.success) throw new IpamError(error.output.code, error.output.msg, error.output.details);
    throw new IpamError(ErrorCode.Internal, `ipamd daemon answered HTTP ${res.status} without an error body`);
  }
  const parsed = safeParse(schema, json);
  if (!parsed.success) throw new IpamError(ErrorCode.Internal, `ipamd daemon answered ${path} with an unexpected body`);
  return parsed.output;
}
