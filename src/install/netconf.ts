/**
 * The netconf `install --conf FILE` puts into the runtime's conf dir, checked before it gets
 * there: a runtime that loads a broken file takes the node's pod networking down with it.
 * libcni loads `*.conflist` as a plugin list and `*.conf`/`*.json` as one plugin, so the
 * shape must match the name; at least one plugin must use `"ipam": {"type": "ipamd"}` (else
 * this is not our file to install), and every such ipam section must pass the same checks
 * the plugin applies at ADD time, so a bad range is refused now rather than at the first pod.
 */
import { array, check, type InferOutput, looseObject, minLength, maxLength, optional, pipe, regex, safeParse, string } from "valibot";
import { SUPPORTED_VERSIONS, NetConfSchema } from "../cni/spec.ts";
import { parseRangeSets, type RangeSetsInput } from "../ipam/pool.ts";
import { firstIssue } from "../errors.ts";

/** libcni's rule for network names. */
const NameSchema = pipe(string(), minLength(1), maxLength(253), regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, "must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"));
const VersionSchema = pipe(
  string(),
  check((v) => (SUPPORTED_VERSIONS as readonly string[]).includes(v), `is not a cniVersion ipamd supports (${SUPPORTED_VERSIONS.join(", ")})`),
);
const PluginSchema = looseObject({
  type: pipe(string(), minLength(1)),
  ipam: optional(looseObject({ type: pipe(string(), minLength(1)) })),
});

export const ConfListSchema = looseObject({
  cniVersion: VersionSchema,
  name: NameSchema,
  plugins: pipe(array(PluginSchema), minLength(1), maxLength(64)),
});
export const SingleConfSchema = looseObject({
  cniVersion: VersionSchema,
  name: NameSchema,
  type: pipe(string(), minLength(1)),
  ipam: optional(looseObject({ type: pipe(string(), minLength(1)) })),
});
type Plugin = InferOutput<typeof PluginSchema>;

export class NetconfError extends Error {}

/** The checks the plugin makes on the conf it is handed (name and version come from the list). */
function checkIpamdPlugin(file: string, where: string, conf: Record<string, unknown>): void {
  const parsed = safeParse(NetConfSchema, conf);
  if (!parsed.success) throw new NetconfError(`netconf ${file}: ${where}${firstIssue(parsed.issues)}`);
  const { ipam } = parsed.output;
  const sets: RangeSetsInput = [];
  if (ipam.subnet) sets.push([{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]);
  sets.push(...(ipam.ranges ?? []));
  try {
    parseRangeSets(sets);
  } catch (err) {
    throw new NetconfError(`netconf ${file}: ${where}ipam: ${(err as Error).message}`);
  }
  // Neither ranges nor pools is fine: the daemon's defaultPools (and namespace pools) serve it.
}

/**
 * Validates the netconf file's text; returns the network name. Throws NetconfError naming
 * the file and the field.
 */
export function validateNetconf(file: string, text: string): { name: string; kind: "conflist" | "conf" } {
  const lower = file.toLowerCase();
  const isList = lower.endsWith(".conflist");
  if (!isList && !lower.endsWith(".conf") && !lower.endsWith(".json")) {
    throw new NetconfError(`netconf ${file}: the name must end in .conflist, .conf or .json, or the runtime ignores it`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new NetconfError(`netconf ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const hasPlugins = typeof data === "object" && data !== null && "plugins" in data;
  if (isList !== hasPlugins) {
    throw new NetconfError(isList ? `netconf ${file}: a .conflist needs a "plugins" list` : `netconf ${file}: has a "plugins" list, so its name must end in .conflist`);
  }
  let cniVersion: string, name: string, plugins: Plugin[];
  if (isList) {
    const parsed = safeParse(ConfListSchema, data);
    if (!parsed.success) throw new NetconfError(`netconf ${file}: ${firstIssue(parsed.issues)}`);
    ({ cniVersion, name, plugins } = parsed.output);
  } else {
    const parsed = safeParse(SingleConfSchema, data);
    if (!parsed.success) throw new NetconfError(`netconf ${file}: ${firstIssue(parsed.issues)}`);
    ({ cniVersion, name } = parsed.output);
    plugins = [parsed.output];
  }
  let ours = 0;
  plugins.forEach((plugin, i) => {
    if (plugin.ipam?.type !== "ipamd") return;
    ours++;
    checkIpamdPlugin(file, isList ? `plugins.${i}.` : "", { ...plugin, cniVersion, name });
  });
  if (ours === 0) throw new NetconfError(`netconf ${file}: no plugin has "ipam": {"type": "ipamd"}; this is not an ipamd network`);
  return { name, kind: isList ? "conflist" : "conf" };
}

/** Whether a file already in the conf dir is an ipamd network (so uninstall may remove it). */
export function isIpamdNetconf(text: string): boolean {
  try {
    const data = JSON.parse(text) as { ipam?: { type?: unknown }; plugins?: { ipam?: { type?: unknown } }[] };
    if (data?.ipam?.type === "ipamd") return true;
    return Array.isArray(data?.plugins) && data.plugins.some((p) => p?.ipam?.type === "ipamd");
  } catch {
    return false;
  }
}
