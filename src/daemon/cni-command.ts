/**
 * A CNI command forwarded whole by the plugin (protocol-command.ts): the daemon runs it with
 * the plugin's own code (cni/command.ts), its calls going straight to this daemon's handlers,
 * and answers with what the plugin prints and its exit code. The netconf's schemas are built
 * once here, warm, instead of in every plugin process.
 */
import { checkedStdin, type DaemonCall, runCommand } from "../cni/command.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import { type CommandHead, decodeCommand, EXIT_CODE_HEADER, MAX_COMMAND_BYTES } from "../protocol-command.ts";
import { CommandHeadSchema } from "../protocol-requests.ts";
import type { CniAnswer, CniCall } from "./cni-routes.ts";
import { httpStatusOf, readLimited, validRequest } from "./http-errors.ts";

/** The body's head and stdin; a body that is not a command is refused (code 6 or 7, no exit code). */
async function readCommand(req: Request): Promise<{ head: CommandHead; stdin: string }> {
  const decoded = decodeCommand(await readLimited(req, MAX_COMMAND_BYTES));
  if (!decoded) throw new IpamError(ErrorCode.DecodingFailure, "a forwarded command starts with one line of JSON");
  return { head: validRequest(CommandHeadSchema, decoded.head), stdin: decoded.stdin };
}

const COMMAND_LABELS = new Set(["ADD", "DEL", "CHECK", "GC", "STATUS"]);

/** `noteFailure`: told of what a call failed with, as if the call had come on its own route. */
export function commandAnswer(calls: Record<string, CniCall>, noteFailure: (err: unknown) => boolean): (req: Request) => Promise<CniAnswer> {
  return async (req) => {
    const { head, stdin } = await readCommand(req);
    let storageFault = false;
    const call = (async (_socket: string, path: string, body: unknown) => {
      try {
        return await calls[path]!(body);
      } catch (err) {
        storageFault ||= noteFailure(err);
        throw err;
      }
    }) as DaemonCall;
    const resolvConf = async () => {
      if (head.resolvConf === undefined) throw new Error("the plugin did not send it");
      return head.resolvConf;
    };
    const outcome = await runCommand(head.env, async () => checkedStdin(stdin), { call, resolvConf });
    const error = outcome.exitCode === 0 ? undefined : (outcome.stdout as { code?: number; msg?: string });
    const commandName = head.env.CNI_COMMAND ?? "";
    return {
      status: error ? httpStatusOf(error.code ?? ErrorCode.Internal) : 200,
      text: outcome.stdout === undefined ? "" : `${JSON.stringify(outcome.stdout)}\n`,
      headers: { [EXIT_CODE_HEADER]: String(outcome.exitCode) },
      error,
      // Metrics and logs count a forwarded ADD as an ADD.
      command: COMMAND_LABELS.has(commandName) ? commandName.toLowerCase() : "admin",
      ...(storageFault ? { storageFault } : {}),
    };
  };
}
