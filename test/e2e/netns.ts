/**
 * Helpers for the tests that build real network plumbing: run a command and capture it,
 * demand root and the tools up front (a missing prerequisite fails loudly, never skips),
 * create network namespaces and bridges that are always removed by the harness cleanup(),
 * and run a CNI plugin other than ours (Debian's bridge) with real env.
 */
import { existsSync } from "node:fs";
import { onCleanup, type PluginEnv, type PluginRun, runPlugin } from "./harness.ts";

export const BRIDGE_PLUGIN = "/usr/lib/cni/bridge";

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (see mustRun). */
export async function run(argv: string[], stdin?: string): Promise<Run> {
  const proc = Bun.spawn(argv, { stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

export async function mustRun(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.exitCode !== 0) throw new Error(`\`${argv.join(" ")}\` exited ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Throws (fails the suite) unless we are root and every named executable is present. */
export function requireRootAndTools(tools: string[]): void {
  if (process.getuid?.() !== 0) throw new Error(`this end-to-end test needs root (uid is ${process.getuid?.()}): it creates network namespaces and bridges`);
  const missing = tools.filter((tool) => (tool.startsWith("/") ? !existsSync(tool) : Bun.which(tool) === null));
  if (missing.length > 0) throw new Error(`this end-to-end test needs ${missing.join(", ")}; install them (iproute2, iputils-ping, containernetworking-plugins)`);
}

/** Creates a network namespace (with lo up) whose deletion is registered with the harness cleanup. */
export async function addNetns(name: string): Promise<string> {
  onCleanup(async () => {
    await run(["ip", "netns", "del", name]);
  });
  await mustRun(["ip", "netns", "add", name]);
  await mustRun(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
  return `/var/run/netns/${name}`;
}

/** Registers a host link (e.g. the bridge a plugin creates) for deletion by the harness cleanup. */
export function deleteLinkOnCleanup(name: string): void {
  onCleanup(async () => {
    await run(["ip", "link", "del", name]);
  });
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await mustRun(["ip", "netns", "list"])).split("\n").some((line) => line.split(" ")[0] === name);
}

export async function linkExists(name: string): Promise<boolean> {
  return (await run(["ip", "link", "show", "dev", name])).exitCode === 0;
}

/** The IPv4 addresses (address/prefix) on an interface inside a namespace. */
export async function ipv4AddressesIn(netns: string, ifname: string): Promise<string[]> {
  const out = await mustRun(["ip", "netns", "exec", netns, "ip", "-j", "addr", "show", "dev", ifname]);
  const links = JSON.parse(out) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`);
}

/** Runs a CNI plugin binary that is not ours (the harness's runPlugin, pointed at another binary). */
export function runOtherPlugin(binary: string, env: PluginEnv, stdin: string | object): Promise<PluginRun> {
  return runPlugin(env, stdin, binary);
}

/** The cniVersions a CNI plugin binary says it supports (CNI_COMMAND=VERSION). */
export async function supportedVersionsOf(binary: string): Promise<string[]> {
  const r = await runPlugin({ CNI_COMMAND: "VERSION" }, { cniVersion: "0.1.0" }, binary);
  if (r.exitCode !== 0 || !Array.isArray(r.json?.supportedVersions)) throw new Error(`${binary} VERSION failed (${r.exitCode}): ${r.stdout} ${r.stderr}`);
  return r.json.supportedVersions as string[];
}
