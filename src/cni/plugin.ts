/**
 * Plugin mode: one CNI command per process, the hot path of every pod start. The command goes
 * to the daemon whole (forward.ts), which runs it with the same code and answers with what to
 * print; this process then loads no schema and validates nothing twice. Only when the daemon
 * cannot be asked does it load the full command (command.ts) and run it here: the checks that
 * need no daemon still answer with their codes (4, 6, 7, …), and the call itself fails with
 * code 11 at once, without a second wait.
 */
import { type Forwarded, forward } from "./forward.ts";
import { readResolvConf } from "./resolv-conf.ts";

type Env = Record<string, string | undefined>;

/**
 * The command run here. With `unreachable`, the daemon could not be asked: every call fails with
 * that message (code 11). Without it, the daemon answered but not as a command (a daemon older
 * than the forwarding route): the command calls it over the per-command routes.
 */
async function runHere(env: Env, stdin: string | Error, unreachable: string | undefined): Promise<{ exitCode: number; stdout: string }> {
  const [{ checkedStdin, runCommand }, { callDaemon }, { ErrorCode, IpamError }] = await Promise.all([import("./command.ts"), import("./client.ts"), import("../errors.ts")]);
  const fail = () => Promise.reject(new IpamError(ErrorCode.TryAgainLater, unreachable!));
  const call: typeof callDaemon = unreachable === undefined ? callDaemon : fail;
  const outcome = await runCommand(env, async () => checkedStdin(stdin), { call, resolvConf: readResolvConf });
  return { exitCode: outcome.exitCode, stdout: outcome.stdout === undefined ? "" : `${JSON.stringify(outcome.stdout)}\n` };
}

/** Prints what the command printed; a failure is also one line on stderr, for the runtime's log. */
async function print(command: string | undefined, exitCode: number, stdout: string): Promise<number> {
  const writes = [];
  if (stdout) writes.push(Bun.write(Bun.stdout, stdout));
  if (exitCode !== 0) {
    let error: { code?: number; msg?: string } | undefined;
    try {
      error = JSON.parse(stdout);
    } catch {
      error = undefined;
    }
    writes.push(Bun.write(Bun.stderr, `ipamd ${command}: error ${error?.code}: ${error?.msg}\n`));
  }
  await Promise.all(writes);
  return exitCode;
}

/**
 * `stdin`: the read main.ts started before loading this module (see there); read here if absent.
 * `Bun.stdin.text()` is the cheapest read Bun has (a `stream()` loop with TextDecoder costs
 * ~0.3 ms more per exec).
 */
export async function runPlugin(stdin?: Promise<string | Error>): Promise<number> {
  const env = process.env;
  const command = env.CNI_COMMAND;
  if (command === "VERSION") return print(command, 0, `${JSON.stringify((await import("./versions.ts")).VERSION_RESULT)}\n`);
  const text = await (stdin ?? Bun.stdin.text().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
  const forwarded: Forwarded = typeof text === "string" ? await forward(env, text) : { answered: false };
  if (forwarded.answered) return print(command, forwarded.exitCode, forwarded.stdout);
  const outcome = await runHere(env, text, forwarded.unreachable);
  return print(command, outcome.exitCode, outcome.stdout);
}
