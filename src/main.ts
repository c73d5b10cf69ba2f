/**
 * Entry point of the one binary. CNI_COMMAND in the environment means a container runtime
 * executed us as an IPAM plugin: the hot path. Otherwise the first argument names a
 * subcommand (serve, status, version, …), whose modules load lazily.
 *
 * The plugin's fast path (cni/plugin.ts, forward.ts, resolv-conf.ts) is imported statically:
 * imported by nothing else, the bundler puts it into this entry's own chunk, and every module
 * a compiled exec loads costs it 0.03–0.1 ms (a dynamic import ~0.1 ms more). What it shares
 * with the daemon (protocol-command.ts) is one small chunk; the rest of the plugin (the full
 * checks, for when the daemon cannot be asked) loads only when needed.
 */
import { runPlugin } from "./cni/plugin.ts";

let exitCode: number;
if (process.env.CNI_COMMAND !== undefined) {
  // Bun reads stdin on its thread pool: start at once, so its start-up overlaps what follows.
  // The promise never rejects, so nothing is unhandled meanwhile.
  const stdin: Promise<string | Error> | undefined =
    process.env.CNI_COMMAND === "VERSION" ? undefined : Bun.stdin.text().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  exitCode = await runPlugin(stdin);
} else {
  const { runCli } = await import("./cli.ts");
  exitCode = await runCli(process.argv.slice(2));
}
// Exit now rather than when idle keep-alive sockets time out.
process.exit(exitCode);

export {};
