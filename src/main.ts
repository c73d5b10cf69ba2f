/**
 * Entry point of the one binary. CNI_COMMAND in the environment means a container runtime
 * executed us as an IPAM plugin: the hot path, which loads only the plugin's modules.
 * Otherwise the first argument names a subcommand (serve, status, version, …).
 */
let exitCode: number;
if (process.env.CNI_COMMAND !== undefined) {
  // Start reading the netconf before loading the plugin's modules: Bun reads stdin on its
  // thread pool, whose start-up (~0.6 ms) then overlaps the module init instead of following it.
  // The promise never rejects, so nothing is unhandled while the import runs.
  const stdin: Promise<string | Error> | undefined =
    process.env.CNI_COMMAND === "VERSION" ? undefined : Bun.stdin.text().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  const { runPlugin } = await import("./cni/plugin.ts");
  exitCode = await runPlugin(stdin);
} else {
  const { runCli } = await import("./cli.ts");
  exitCode = await runCli(process.argv.slice(2));
}
// Exit now rather than when idle keep-alive sockets time out.
process.exit(exitCode);

export {};
