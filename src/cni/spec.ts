/**
 * The CNI side of the boundary: which versions we speak, the CNI_* environment, the netconf
 * (host-local's `ipam` section plus `socket`), and CNI_ARGS. Everything here is a valibot
 * schema or a small pure parser; plugin.ts turns their failures into CNI error codes.
 */
import {
  array,
  type InferOutput,
  integer,
  looseObject,
  maxLength,
  minLength,
  number,
  object,
  optional,
  pipe,
  regex,
  string,
} from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { RangeInputSchema, RangeSetsInputSchema } from "../ipam/pool.ts";
import { AttachmentKeySchema, NAME_PATTERN, PoolNamesSchema } from "../protocol.ts";
import type { CniVersion, Command } from "./versions.ts";

export { containerIdProblem, interfaceNameProblem } from "../protocol.ts";
export { type CniVersion, type Command, COMMANDS, LATEST_VERSION, SUPPORTED_VERSIONS } from "./versions.ts";

/** The oldest netconf version in which the spec defines each command. */
export const MINIMUM_VERSION: Partial<Record<Command, CniVersion>> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };

/** Which CNI_* variables each command needs, as libcni's skel requires them. */
export const REQUIRED_ENV: Record<Command, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  GC: ["CNI_PATH"],
  STATUS: ["CNI_PATH"],
  VERSION: [],
};

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const RouteSchema = looseObject({
  dst: string(),
  gw: optional(string()),
  mtu: optional(pipe(number(), integer())),
  advmss: optional(pipe(number(), integer())),
  priority: optional(pipe(number(), integer())),
  table: optional(pipe(number(), integer())),
  scope: optional(pipe(number(), integer())),
});
export type Route = InferOutput<typeof RouteSchema>;

const IpListSchema = pipe(array(string()), maxLength(64));

export const IpamConfigSchema = looseObject({
  type: string(),
  /** The daemon's socket; /run/ipamd/ipamd.sock when absent. */
  socket: optional(pipe(string(), minLength(1), maxLength(4096))),
  ranges: optional(RangeSetsInputSchema),
  /** A named pool of the daemon's config, or several (`pools`, e.g. one IPv4 and one IPv6). */
  pool: optional(pipe(string(), minLength(1), maxLength(253))),
  pools: optional(PoolNamesSchema),
  // host-local's older single-range form, directly in `ipam`.
  ...object({ ...RangeInputSchema.entries, subnet: optional(string()) }).entries,
  routes: optional(pipe(array(RouteSchema), maxLength(1024))),
  resolvConf: optional(string()),
  /** host-local's data directory: accepted so configs work unchanged, and ignored. */
  dataDir: optional(string()),
});
export type IpamConfig = InferOutput<typeof IpamConfigSchema>;

const AttachmentListSchema = pipe(array(AttachmentKeySchema), maxLength(1_000_000));

export const NetConfSchema = looseObject({
  cniVersion: string(),
  name: pipe(string(), minLength(1), maxLength(253), regex(NAME_PATTERN, "a network name is letters, digits, '_', '.' and '-', starting with a letter or digit")),
  type: optional(string()),
  ipam: IpamConfigSchema,
  runtimeConfig: optional(looseObject({ ips: optional(IpListSchema) })),
  args: optional(looseObject({ cni: optional(looseObject({ ips: optional(IpListSchema) })) })),
  prevResult: optional(looseObject({ ips: optional(array(looseObject({ address: string() }))) })),
  "cni.dev/valid-attachments": optional(AttachmentListSchema),
  "cni.dev/attachments": optional(AttachmentListSchema),
});
export type NetConf = InferOutput<typeof NetConfSchema>;

/** CNI_ARGS: "K=V;K=V". Unknown keys are tolerated: kubelet always adds IgnoreUnknown=1. */
export function parseCniArgs(text: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  if (!text) return args;
  for (const pair of text.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new IpamError(ErrorCode.InvalidEnvironment, `CNI_ARGS: invalid pair "${pair}", expected KEY=VALUE`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}

