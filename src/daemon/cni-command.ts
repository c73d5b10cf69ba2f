/**
 * A CNI command forwarded whole by the plugin (protocol-command.ts): the daemon runs it with
 * the plugin's own code (cni/command.ts), its calls going straight to this daemon's handlers,
 * and answers with what the plugin prints and its exit code. The netconf's schemas are built
 * once here, warm, instead of in every plugin process.
 */
import type { Context, Handler } from "hono";
import { checkedStdin, type DaemonCall, runCommand } from "../cni/command.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import { type CommandHead, decodeCommand, EXIT_CODE_HEADER, MAX_COMMAND_BYTES } from "../protocol-command.ts";
import { CommandHeadSchema } from "../protocol-requests.ts";
import type { CniCall } from "./cni-routes.ts";
import { httpStatusOf, readLimited, validRequest } from "./http-errors.ts";

/** The body's head and stdin; a body that is not a command is refused (code 6 or 7, no exit code). */
async function readCommand(c: Context): Promise<{ head: CommandHead; stdin: string }> {
  const decoded = decodeCommand(await readLimited(c, MAX_COMMAND_BYTES));
  if (!decoded) throw new IpamError(ErrorCode.DecodingFailure, "a forwarded command starts with one line of JSON");
  return { head: validRequest(CommandHeadSchema, decoded.head), stdin: decoded.stdin };
}

const COMMAND_LABELS = new Set(["ADD", "DEL", "CHECK", "GC", "STATUS"]);

export function commandHandler(calls: Record<string, CniCall>, noteFailure: (c: Context, err: unknown) => void): Handler {
  return async (c) => {
    const { head, stdin } = await readCommand(c);
    const command = head.env.CNI_COMMAND ?? "";
    // Metrics and logs count a forwarded ADD as an ADD.
    c.set("cniCommand", COMMAND_LABELS.has(command) ? command.toLowerCase() : "admin");
    const call = (async (_socket: string, path: string, body: unknown) => {
      try {
        return await calls[path]!(body);
      } catch (err) {
        noteFailure(c, err);
        throw err;
      }
    }) as DaemonCall;
    const resolvConf = async () => {
      if (head.resolvConf === undefined) throw new Error("the plugin did not send it");
      return head.resolvConf;
    };
    const outcome = await runCommand(head.env, async () => checkedStdin(stdin), { call, resolvConf });
    const code = (outcome.stdout as { code?: number } | undefined)?.code;
    const status = outcome.exitCode === 0 ? 200 : httpStatusOf(code ?? ErrorCode.Internal);
    const text = outcome.stdout === undefined ? "" : `${JSON.stringify(outcome.stdout)}\n`;
    return c.body(text, status, { [EXIT_CODE_HEADER]: String(outcome.exitCode), "content-type": "application/json" });
  };
}
