/**
 * The plugin's fast path: forward the command to the daemon whole (protocol-command.ts) and
 * hand back its answer. It loads no schema and checks nothing the daemon checks; it reads only
 * what it needs to reach the daemon (the netconf's `ipam.socket`) and what only this host has
 * (the `ipam.resolvConf` file). When it cannot forward (stdin is not a JSON netconf, the
 * daemon is unreachable, the answer is not a command's) it says so, and the plugin runs the
 * command itself (plugin.ts), so every error keeps its code with the daemon down.
 */
import { CALL_TIMEOUT_MS, type CommandHead, COMMAND_PATH, DEFAULT_SOCKET, encodeCommand, EXIT_CODE_HEADER, FORWARDED_ENV, unreachableMessage } from "../protocol-command.ts";
import { readResolvConf } from "./resolv-conf.ts";

export type Forwarded =
  /** The daemon ran the command: print this and exit with that. */
  | { answered: true; exitCode: number; stdout: string }
  /** Run it here; `unreachable` is code 11's message when the daemon could not be asked at all. */
  | { answered: false; unreachable?: string };

type Env = Record<string, string | undefined>;
type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * The netconf's `ipam`, read as plain JSON; null when its shape is for the full check to judge.
 * Its size is the daemon's to check (code 6 over MAX_STDIN_BYTES; a body over its own limit is
 * refused without an exit code, and the plugin then checks it here): `Buffer`, loaded on first
 * use, would cost every exec 0.1–0.3 ms.
 */
function ipamOf(stdin: string): Json | null {
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return null;
  }
  return isObject(conf) && isObject(conf.ipam) ? conf.ipam : null;
}

function socketOf(ipam: Json): string | null {
  const socket = ipam.socket;
  if (socket === undefined) return DEFAULT_SOCKET;
  return typeof socket === "string" && socket.length > 0 && socket.length <= 4096 ? socket : null;
}

/** The head: the CNI variables, and for an ADD the resolvConf's text (null: it cannot be read, the full path says why). */
async function headOf(env: Env, ipam: Json): Promise<CommandHead | null> {
  const head: CommandHead = { env: {} };
  for (const name of FORWARDED_ENV) if (env[name] !== undefined) head.env[name] = env[name];
  const path = ipam.resolvConf;
  if (env.CNI_COMMAND === "ADD" && typeof path === "string" && path !== "") {
    try {
      head.resolvConf = await readResolvConf(path);
    } catch {
      return null;
    }
  }
  return head;
}

/** Any command but VERSION (whose answer is a constant): the daemon refuses an unknown one with code 4. */
export async function forward(env: Env, stdin: string): Promise<Forwarded> {
  const here = { answered: false } as const;
  const ipam = ipamOf(stdin);
  const socket = ipam && socketOf(ipam);
  const head = ipam && socket && (await headOf(env, ipam));
  if (!socket || !head) return here;
  const body = encodeCommand(head, stdin);
  let res: Response;
  let stdout: string;
  try {
    res = await fetch(`http://ipamd${COMMAND_PATH}`, { unix: socket, method: "POST", body, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    stdout = await res.text();
  } catch (err) {
    return { answered: false, unreachable: unreachableMessage(socket, err, CALL_TIMEOUT_MS) };
  }
  const exitCode = res.headers.get(EXIT_CODE_HEADER);
  return exitCode === null ? here : { answered: true, exitCode: Number(exitCode), stdout };
}
