/**
 * Entry point of the one binary. CNI_COMMAND in the environment means a container runtime
 * executed us as an IPAM plugin: the hot path, which loads only the plugin's modules.
 * Otherwise the first argument names a subcommand (serve, status, version, …).
 */
let exitCode: number;
if (process.env.CNI_COMMAND !== undefined) {
  const { runPlugin } = await import("./cni/plugin.ts");
  exitCode = await runPlugin();
} else {
  const { runCli } = await import("./cli.ts");
  exitCode = await runCli(process.argv.slice(2));
}
// Exit now rather than when idle keep-alive sockets time out.
process.exit(exitCode);

export {};
