/**
 * One CNI command forwarded whole. The plugin sends its CNI_* environment and its stdin as
 * they came; the daemon runs the command with the code the plugin would run itself
 * (cni/command.ts) and answers with what the plugin prints and its exit code. So a pod start
 * builds and checks the netconf's schemas once, in the warm daemon, and the plugin's start-up
 * loads no schema at all. Both sides import this module; it holds no schema (the daemon's is
 * CommandHeadSchema in protocol-requests.ts), so importing it costs the plugin nothing.
 *
 * The body is the head, one line of JSON, then a newline, then stdin byte for byte: the netconf
 * is neither escaped into a string nor parsed twice on its way.
 */
export const DEFAULT_SOCKET = "/run/ipamd/ipamd.sock";

export const COMMAND_PATH = "/v1/cni/command";

/**
 * On an answer to COMMAND_PATH: the plugin's exit code, and the body is its stdout. An answer
 * without it did not come from a command (a daemon older than this route, a refused body):
 * the plugin then runs the command itself, over the per-command routes.
 */
export const EXIT_CODE_HEADER = "x-cni-exit-code";

/** The netconf on stdin is refused above this many bytes (code 6), as libcni's plugins do. */
export const MAX_STDIN_BYTES = 1 << 20;

/** What a forwarded command's body may hold: stdin, plus the head (env, a resolv.conf of at most 64 KiB escaped). */
export const MAX_COMMAND_BYTES = MAX_STDIN_BYTES + 512 * 1024;

/** The CNI variables forwarded: every one the spec defines. */
export const FORWARDED_ENV = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"] as const;
export type ForwardedEnv = Partial<Record<(typeof FORWARDED_ENV)[number], string>>;

export interface CommandHead {
  env: ForwardedEnv;
  /**
   * The text of the netconf's `ipam.resolvConf`, read by the plugin: the file is on the
   * plugin's host, which need not be the daemon's file system.
   */
  resolvConf?: string;
}

/** A daemon that has not answered by then is code 11, well inside the 3 s a runtime is promised. */
export const CALL_TIMEOUT_MS = 2500;

/** How a client words a daemon it could not ask (code 11): the plugin's fast path and cni/client.ts alike. */
export function unreachableMessage(socket: string, err: unknown, timeoutMs: number): string {
  const name = (err as Error)?.name;
  const why = name === "TimeoutError" || name === "AbortError" ? `did not answer within ${timeoutMs} ms` : `is not reachable (${(err as Error)?.message ?? err})`;
  return `ipamd daemon at ${socket} ${why}`;
}

export const encodeCommand = (head: CommandHead, stdin: string): string => `${JSON.stringify(head)}\n${stdin}`;

/** The head (parsed, not yet validated) and stdin of a body; null when it has no head line. */
export function decodeCommand(body: string): { head: unknown; stdin: string } | null {
  const newline = body.indexOf("\n");
  if (newline < 0) return null;
  try {
    return { head: JSON.parse(body.slice(0, newline)), stdin: body.slice(newline + 1) };
  } catch {
    return null;
  }
}
