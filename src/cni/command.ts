/**
 * One CNI command, from env and netconf to what the plugin prints: validate the env and the
 * netconf, build the daemon's request, call it, render the CNI result (or a CNI error object).
 * Two places run it: the daemon, for every command the plugin forwards (daemon/cni-command.ts,
 * calling its own handlers), and the plugin itself when the daemon cannot be asked
 * (cni/plugin.ts, over the socket or with a call that fails at once). One code path, so the
 * codes and messages are the same whichever side ran it.
 */
import type { BaseIssue, BaseSchema, InferOutput } from "valibot";
import { safeParse } from "valibot";
import { ErrorCode, firstIssue, IpamError, toIpamError } from "../errors.ts";
import { canonicalIp } from "../ipam/address.ts";
import { parseRangeSets, type RangeSetsInput } from "../ipam/pool.ts";
import { DEFAULT_SOCKET, EmptyResponseSchema, GcResponseSchema, type IpsResponse, IpsResponseSchema, Paths, type PoolChoices, StatusResponseSchema } from "../protocol.ts";
import { MAX_STDIN_BYTES } from "../protocol-command.ts";
import type { AddRequest, Pod } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { type Dns, parseResolvConf, renderResult } from "./result.ts";
import { type Command, COMMANDS, compareVersions, containerIdProblem, interfaceNameProblem, LATEST_VERSION, MINIMUM_VERSION, type NetConf, NetConfSchema, parseCniArgs, REQUIRED_ENV, SUPPORTED_VERSIONS } from "./spec.ts";
import { VERSION_RESULT } from "./versions.ts";

type Env = Record<string, string | undefined>;

/** One call to the daemon: over its socket (cni/client.ts) or, inside it, to its own handlers. */
export type DaemonCall = <S extends BaseSchema<unknown, unknown, BaseIssue<unknown>>>(socket: string, path: string, body: unknown, schema: S) => Promise<InferOutput<S>>;

export interface CommandDeps {
  call: DaemonCall;
  /** The text of the netconf's resolvConf; throws an Error whose message says why it cannot be read. */
  resolvConf: (path: string) => Promise<string>;
}

/** What one command produced: the JSON for stdout (if any) and the exit code. */
export interface CommandOutcome {
  stdout?: unknown;
  exitCode: number;
}

/** The netconf's text as it came on stdin: its size is checked once it is in. */
export function checkedStdin(text: string | Error): string {
  if (text instanceof Error) throw new IpamError(ErrorCode.IoFailure, `cannot read the network configuration on stdin: ${text.message}`);
  if (Buffer.byteLength(text) > MAX_STDIN_BYTES) {
    throw new IpamError(ErrorCode.DecodingFailure, `network configuration on stdin is over ${MAX_STDIN_BYTES} bytes`);
  }
  return text;
}

/**
 * Netconfs already parsed, by their text: the daemon sees the same few again and again (one
 * per network, STATUS every few seconds), and run cold, between pod starts, the schema costs
 * a pod start ~0.07 ms. A netconf is a pure function of its text; entries are frozen, so no
 * caller can change what the next one gets. Bounded: the oldest goes first, and a large one (a
 * GC's list of attachments) is not kept.
 */
const parsedNetConfs = new Map<string, NetConf>();
const MAX_PARSED_NETCONFS = 64;
const MAX_KEPT_NETCONF_CHARS = 16 * 1024;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function parseNetConf(stdin: string): NetConf {
  const known = parsedNetConfs.get(stdin);
  if (known) return known;
  const conf = deepFreeze(parseNetConfText(stdin));
  if (stdin.length > MAX_KEPT_NETCONF_CHARS) return conf;
  if (parsedNetConfs.size >= MAX_PARSED_NETCONFS) parsedNetConfs.delete(parsedNetConfs.keys().next().value!);
  parsedNetConfs.set(stdin, conf);
  return conf;
}

function parseNetConfText(stdin: string): NetConf {
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
 * the same message; see addressesFor for the check when the daemon is down.
 */
function rangesOf(conf: NetConf): RangeSetsInput {
  const { ipam } = conf;
  const sets: RangeSetsInput = [];
  if (ipam.subnet) sets.push([{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]);
  sets.push(...(ipam.ranges ?? []));
  return sets;
}

/**
 * The daemon's ADD. Checked here only when the daemon cannot be asked, so a bad netconf is still
 * code 7 (not 11) with the daemon down, while a pod start does not pay for the check twice.
 */
async function addressesFor(call: DaemonCall, socket: string, request: AddRequest): Promise<IpsResponse> {
  try {
    return await call(socket, Paths.add, request, IpsResponseSchema);
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
  const texts = [...(cniArgs.get("IP")?.split(",") ?? []), ...(conf.args?.cni?.ips ?? []), ...(conf.runtimeConfig?.ips ?? [])];
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

function addRequestOf(env: Env, conf: NetConf): AddRequest {
  const cniArgs = parseCniArgs(env.CNI_ARGS);
  const pod = podOf(cniArgs);
  const ranges = rangesOf(conf);
  const pools = poolsOf(conf);
  // Neither ranges nor pools: the daemon's defaultPools (and the namespace's pools) decide.
  return {
    network: conf.name,
    containerID: env.CNI_CONTAINERID!,
    ifname: env.CNI_IFNAME!,
    netns: env.CNI_NETNS,
    ...(ranges.length > 0 ? { ranges } : {}),
    ...(pools.length > 0 ? { pools } : {}),
    requestedIps: requestedIpsOf(conf, cniArgs),
    ...(pod ? { pod } : {}),
  };
}

async function dnsOf(conf: NetConf, deps: CommandDeps): Promise<Dns> {
  const path = conf.ipam.resolvConf;
  if (!path) return {};
  let text: string;
  try {
    text = await deps.resolvConf(path);
  } catch (err) {
    throw new IpamError(ErrorCode.IoFailure, `cannot read resolvConf ${path}: ${(err as Error)?.message ?? err}`);
  }
  return parseResolvConf(text);
}

async function check(call: DaemonCall, socket: string, env: Env, conf: NetConf): Promise<CommandOutcome> {
  if (!conf.prevResult) throw new IpamError(ErrorCode.InvalidNetworkConfig, "CHECK needs prevResult in the network configuration");
  const answer = await call(socket, Paths.check, { network: conf.name, containerID: env.CNI_CONTAINERID!, ifname: env.CNI_IFNAME! }, IpsResponseSchema);
  const previous = new Set((conf.prevResult.ips ?? []).map((ip) => canonicalIp(ip.address.split("/")[0]!)));
  const missing = answer.ips.filter((ip) => !previous.has(ip.address));
  if (missing.length > 0) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `prevResult lacks ${missing.map((ip) => ip.address).join(", ")}, allocated to this container`);
  }
  return { exitCode: 0 };
}

async function execute(command: Exclude<Command, "VERSION">, env: Env, conf: NetConf, deps: CommandDeps): Promise<CommandOutcome> {
  const socket = conf.ipam.socket ?? DEFAULT_SOCKET;
  const { call } = deps;
  switch (command) {
    case "ADD": {
      const request = addRequestOf(env, conf);
      // resolvConf first: failing after the daemon committed would leave an address behind.
      const dns = await dnsOf(conf, deps);
      const answer = await addressesFor(call, socket, request);
      return { stdout: renderResult(conf.cniVersion, answer.ips, conf.ipam.routes, dns), exitCode: 0 };
    }
    case "DEL":
      // Never a false success: an unreachable daemon fails the DEL, and the runtime retries.
      await call(socket, Paths.del, { network: conf.name, containerID: env.CNI_CONTAINERID!, ifname: env.CNI_IFNAME! }, EmptyResponseSchema);
      return { exitCode: 0 };
    case "CHECK":
      return check(call, socket, env, conf);
    case "GC": {
      const valid = conf["cni.dev/valid-attachments"] ?? conf["cni.dev/attachments"];
      if (valid === undefined) return { exitCode: 0 }; // no list: nothing is known to be stale
      await call(socket, Paths.gc, { network: conf.name, validAttachments: valid }, GcResponseSchema);
      return { exitCode: 0 };
    }
    case "STATUS":
      try {
        await call(socket, Paths.status, undefined, StatusResponseSchema);
      } catch (err) {
        throw new IpamError(ErrorCode.NotAvailable, `ipamd is not available: ${toIpamError(err).message}`);
      }
      return { exitCode: 0 };
  }
}

/** Runs one command; never throws: every failure becomes a CNI error object. */
export async function runCommand(env: Env, readInput: () => Promise<string>, deps: CommandDeps): Promise<CommandOutcome> {
  let cniVersion: string = LATEST_VERSION;
  try {
    const command = env.CNI_COMMAND as Command;
    if (!(COMMANDS as readonly string[]).includes(command)) {
      throw new IpamError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${env.CNI_COMMAND}`, `ipamd ${VERSION} handles ${COMMANDS.join(", ")}`);
    }
    if (command === "VERSION") return { stdout: VERSION_RESULT, exitCode: 0 };
    checkEnv(command, env);
    const conf = parseNetConf(await readInput());
    cniVersion = conf.cniVersion;
    const minimum = MINIMUM_VERSION[command];
    if (minimum && compareVersions(conf.cniVersion, minimum) < 0) {
      throw new IpamError(ErrorCode.IncompatibleVersion, `config version does not allow ${command}`, `${command} needs cniVersion ${minimum} or later`);
    }
    return await execute(command, env, conf, deps);
  } catch (err) {
    return { stdout: { cniVersion, ...toIpamError(err).toJSON() }, exitCode: 1 };
  }
}
