/**
 * Plugin mode: one CNI command per process. Read the netconf from stdin, validate env and
 * netconf, make one call to the daemon, print the result (or a CNI error object) on stdout.
 * This is the hot path of every pod start: it imports only valibot functions, the protocol
 * schemas and the pure range parser, and touches no Node built-in module.
 */
import type { Stats } from "node:fs";
import { safeParse } from "valibot";
import { ErrorCode, firstIssue, IpamError, toIpamError } from "../errors.ts";
import { canonicalIp } from "../ipam/address.ts";
import { parseRangeSets, type RangeSetsInput } from "../ipam/pool.ts";
import { DEFAULT_SOCKET, EmptyResponseSchema, GcResponseSchema, type IpsResponse, IpsResponseSchema, Paths, type PoolChoices, StatusResponseSchema } from "../protocol.ts";
import type { AddRequest, Pod } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { callDaemon } from "./client.ts";
import { type Dns, parseResolvConf, renderResult } from "./result.ts";
import {
  type Command,
  COMMANDS,
  compareVersions,
  containerIdProblem,
  interfaceNameProblem,
  LATEST_VERSION,
  MINIMUM_VERSION,
  type NetConf,
  NetConfSchema,
  parseCniArgs,
  REQUIRED_ENV,
  SUPPORTED_VERSIONS,
} from "./spec.ts";

export const MAX_STDIN_BYTES = 1 << 20;

type Env = Record<string, string | undefined>;

/** What one command produced: the JSON for stdout (if any) and the exit code. */
export interface PluginOutcome {
  stdout?: unknown;
  exitCode: number;
}

/**
 * The netconf from stdin. `Bun.stdin.text()` is the cheapest read Bun has (a `stream()` loop
 * with TextDecoder costs ~0.3 ms more per exec); the size is checked once the text is in.
 */
async function readStdin(pending: Promise<string | Error> = Bun.stdin.text()): Promise<string> {
  const text = await pending;
  if (text instanceof Error) throw new IpamError(ErrorCode.IoFailure, `cannot read the network configuration on stdin: ${text.message}`);
  if (Buffer.byteLength(text) > MAX_STDIN_BYTES) {
    throw new IpamError(ErrorCode.DecodingFailure, `network configuration on stdin is over ${MAX_STDIN_BYTES} bytes`);
  }
  return text;
}

function parseNetConf(stdin: string): NetConf {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (err) {
    throw new IpamError(ErrorCode.DecodingFailure, "network configuration on stdin is not valid JSON", (err as Error).message);
  }
  if (json && typeof json === "object" && typeof (json as { cniVersion?: unknown }).cniVersion === "string") {
    checkVersion((json as { cniVersion: string }).cniVersion);
  }
  const parsed = safeParse(NetConfSchema, json);
  if (!parsed.success) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `invalid network configuration: ${firstIssue(parsed.issues)}`);
  }
  return parsed.output;
}

function checkVersion(version: string): void {
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new IpamError(ErrorCode.IncompatibleVersion, "incompatible CNI versions", `config is "${version}", plugin supports [${SUPPORTED_VERSIONS.join(" ")}]`);
  }
}

function checkEnv(command: Command, env: Env): void {
  const missing = REQUIRED_ENV[command].filter((name) => !env[name]);
  if (missing.length > 0) throw new IpamError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(",")}] missing`);
  if (command === "ADD" || command === "DEL" || command === "CHECK") {
    const idProblem = containerIdProblem(env.CNI_CONTAINERID!);
    if (idProblem) throw new IpamError(ErrorCode.InvalidEnvironment, `CNI_CONTAINERID ${idProblem}`);
    const ifProblem = interfaceNameProblem(env.CNI_IFNAME!);
    if (ifProblem) throw new IpamError(ErrorCode.InvalidEnvironment, `CNI_IFNAME ${ifProblem}`);
  }
}

/**
 * host-local's two spellings of the ranges: `ranges`, plus the single range directly in `ipam`.
 * Their full validation (CIDRs, bounds, overlaps) is the daemon's, which answers code 7 with
 * the same message; see addressesFor for the plugin's own check when the daemon is down.
 */
function rangesOf(conf: NetConf): RangeSetsInput {
  const { ipam } = conf;
  const sets: RangeSetsInput = [];
  if (ipam.subnet) sets.push([{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]);
  sets.push(...(ipam.ranges ?? []));
  return sets;
}

/**
 * The daemon's ADD. The ranges are validated here only when the daemon cannot be asked, so a
 * bad netconf is still code 7 (not 11) with the daemon down, while a pod start does not pay
 * for the check twice: run cold, in a fresh process, it costs ~0.6 ms.
 */
async function addressesFor(socket: string, request: AddRequest): Promise<IpsResponse> {
  try {
    return await callDaemon(socket, Paths.add, request, IpsResponseSchema);
  } catch (err) {
    if (err instanceof IpamError && err.code === ErrorCode.TryAgainLater && request.ranges) parseRangeSets(request.ranges);
    throw err;
  }
}

/** Named pools: `pool` and/or `pools` (whose elements may be fallback lists), defined in the daemon's config. */
function poolsOf(conf: NetConf): PoolChoices {
  const choices = [...(conf.ipam.pool ? [conf.ipam.pool] : []), ...(conf.ipam.pools ?? [])];
  // A pool named twice by `pool` and `pools` is one address, not two.
  return choices.filter((c, i) => typeof c !== "string" || choices.indexOf(c) === i);
}

/** Static addresses from CNI_ARGS IP=, args.cni.ips and runtimeConfig.ips (with or without prefix). */
function requestedIpsOf(conf: NetConf, cniArgs: Map<string, string>): string[] {
  const texts = [
    ...(cniArgs.get("IP")?.split(",") ?? []),
    ...(conf.args?.cni?.ips ?? []),
    ...(conf.runtimeConfig?.ips ?? []),
  ];
  const ips: string[] = [];
  for (const raw of texts) {
    const text = raw.trim();
    const ip = canonicalIp(text.split("/")[0]!);
    if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `invalid requested IP "${text}"`);
    if (!ips.includes(ip)) ips.push(ip);
  }
  return ips;
}

function podOf(cniArgs: Map<string, string>): Pod | undefined {
  const pod: Pod = {};
  const namespace = cniArgs.get("K8S_POD_NAMESPACE");
  const name = cniArgs.get("K8S_POD_NAME");
  const uid = cniArgs.get("K8S_POD_UID");
  if (namespace) pod.namespace = namespace;
  if (name) pod.name = name;
  if (uid) pod.uid = uid;
  return Object.keys(pod).length > 0 ? pod : undefined;
}

/** A resolv.conf is a few hundred bytes; host-local's 64 KiB bound keeps a mistake from costing memory. */
export const MAX_RESOLV_CONF_BYTES = 64 * 1024;

/**
 * The resolvConf file, read only when it is a regular file of at most 64 KiB: opening a FIFO
 * blocks until a writer comes (the pod start would hang) and a device such as /dev/zero never
 * ends. So stat comes first (it follows symlinks, as /etc/resolv.conf often is one, and opens
 * nothing), then at most one byte past the limit is read. Bun.file().stat() needs no node:fs
 * import, which would load on every exec (DESIGN.md, the hot path).
 */
async function dnsOf(conf: NetConf): Promise<Dns> {
  const path = conf.ipam.resolvConf;
  if (!path) return {};
  const refuse = (why: string) => new IpamError(ErrorCode.IoFailure, `cannot read resolvConf ${path}: ${why}`);
  let bytes: ArrayBuffer;
  try {
    const file = Bun.file(path);
    const info = await file.stat();
    if (!info.isFile()) throw refuse(`not a regular file (${kindOf(info)})`);
    if (info.size > MAX_RESOLV_CONF_BYTES) throw refuse(`over ${MAX_RESOLV_CONF_BYTES} bytes`);
    bytes = await file.slice(0, MAX_RESOLV_CONF_BYTES + 1).arrayBuffer();
  } catch (err) {
    if (err instanceof IpamError) throw err;
    throw refuse((err as { code?: string }).code === "ENOENT" ? "does not exist" : (err as Error).message);
  }
  if (bytes.byteLength > MAX_RESOLV_CONF_BYTES) throw refuse(`over ${MAX_RESOLV_CONF_BYTES} bytes`); // it grew since stat
  return parseResolvConf(new TextDecoder().decode(bytes));
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return "a directory";
  if (info.isFIFO()) return "a FIFO";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isSocket()) return "a socket";
  return "an unknown kind of file";
}

async function execute(command: Exclude<Command, "VERSION">, env: Env, conf: NetConf): Promise<PluginOutcome> {
  const socket = conf.ipam.socket ?? DEFAULT_SOCKET;
  const network = conf.name;
  switch (command) {
    case "ADD": {
      const cniArgs = parseCniArgs(env.CNI_ARGS);
      const pod = podOf(cniArgs);
      const ranges = rangesOf(conf);
      const pools = poolsOf(conf);
      // Neither ranges nor pools: the daemon's defaultPools (and the namespace's pools) decide.
      const request: AddRequest = {
        network,
        containerID: env.CNI_CONTAINERID!,
        ifname: env.CNI_IFNAME!,
        netns: env.CNI_NETNS,
        ...(ranges.length > 0 ? { ranges } : {}),
        ...(pools.length > 0 ? { pools } : {}),
        requestedIps: requestedIpsOf(conf, cniArgs),
        ...(pod ? { pod } : {}),
      };
      // resolvConf first: failing after the daemon committed would leave an address behind.
      const dns = await dnsOf(conf);
      const answer = await addressesFor(socket, request);
      return { stdout: renderResult(conf.cniVersion, answer.ips, conf.ipam.routes, dns), exitCode: 0 };
    }
    case "DEL":
      // Never a false success: an unreachable daemon fails the DEL, and the runtime retries.
      await callDaemon(socket, Paths.del, { network, containerID: env.CNI_CONTAINERID!, ifname: env.CNI_IFNAME! }, EmptyResponseSchema);
      return { exitCode: 0 };
    case "CHECK": {
      if (!conf.prevResult) throw new IpamError(ErrorCode.InvalidNetworkConfig, "CHECK needs prevResult in the network configuration");
      const answer = await callDaemon(socket, Paths.check, { network, containerID: env.CNI_CONTAINERID!, ifname: env.CNI_IFNAME! }, IpsResponseSchema);
      const previous = new Set((conf.prevResult.ips ?? []).map((ip) => canonicalIp(ip.address.split("/")[0]!)));
      const missing = answer.ips.filter((ip) => !previous.has(ip.address));
      if (missing.length > 0) {
        throw new IpamError(ErrorCode.InvalidNetworkConfig, `prevResult lacks ${missing.map((ip) => ip.address).join(", ")}, allocated to this container`);
      }
      return { exitCode: 0 };
    }
    case "GC": {
      const valid = conf["cni.dev/valid-attachments"] ?? conf["cni.dev/attachments"];
      if (valid === undefined) return { exitCode: 0 }; // no list: nothing is known to be stale
      await callDaemon(socket, Paths.gc, { network, validAttachments: valid }, GcResponseSchema);
      return { exitCode: 0 };
    }
    case "STATUS":
      try {
        await callDaemon(socket, Paths.status, undefined, StatusResponseSchema);
      } catch (err) {
        const e = toIpamError(err);
        throw new IpamError(ErrorCode.NotAvailable, `ipamd is not available: ${e.message}`);
      }
      return { exitCode: 0 };
  }
}

/** Runs one command; never throws: every failure becomes a CNI error object. */
export async function runCommand(env: Env, readInput: () => Promise<string>): Promise<PluginOutcome> {
  let cniVersion: string = LATEST_VERSION;
  try {
    const command = env.CNI_COMMAND as Command;
    if (!(COMMANDS as readonly string[]).includes(command)) {
      throw new IpamError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${env.CNI_COMMAND}`, `ipamd ${VERSION} handles ${COMMANDS.join(", ")}`);
    }
    if (command === "VERSION") return { stdout: { cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS }, exitCode: 0 };
    checkEnv(command, env);
    const conf = parseNetConf(await readInput());
    cniVersion = conf.cniVersion;
    const minimum = MINIMUM_VERSION[command];
    if (minimum && compareVersions(conf.cniVersion, minimum) < 0) {
      throw new IpamError(ErrorCode.IncompatibleVersion, `config version does not allow ${command}`, `${command} needs cniVersion ${minimum} or later`);
    }
    return await execute(command, env, conf);
  } catch (err) {
    return { stdout: { cniVersion, ...toIpamError(err).toJSON() }, exitCode: 1 };
  }
}

/** `stdin`: the read main.ts started before loading this module (see there); read here if absent. */
export async function runPlugin(stdin?: Promise<string | Error>): Promise<number> {
  const outcome = await runCommand(process.env, () => readStdin(stdin));
  const writes = [];
  if (outcome.stdout !== undefined) writes.push(Bun.write(Bun.stdout, `${JSON.stringify(outcome.stdout)}\n`));
  // The plugin logs only failures, one line on stderr (runtimes put it in their own logs).
  if (outcome.exitCode !== 0) {
    const e = outcome.stdout as { code?: number; msg?: string };
    writes.push(Bun.write(Bun.stderr, `ipamd ${process.env.CNI_COMMAND}: error ${e?.code}: ${e?.msg}\n`));
  }
  await Promise.all(writes);
  return outcome.exitCode;
}
