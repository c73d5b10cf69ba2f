/**
 * The daemon's config file (`serve --config FILE`, default /etc/ipamd/config.json). Flags on
 * the command line win over the file; the file wins over built-in defaults. Unknown keys are
 * refused so a typo is an error at start-up, not a silently ignored setting.
 */
import { type InferOutput, maxLength, minLength, optional, pipe, safeParse, strictObject, string } from "valibot";
import { DEFAULT_SOCKET } from "../protocol.ts";

export const DEFAULT_CONFIG = "/etc/ipamd/config.json";
export const DEFAULT_DB = "/var/lib/ipamd/ipamd.db";

const path = pipe(string(), minLength(1), maxLength(4096));

export const DaemonConfigSchema = strictObject({
  socket: optional(path),
  db: optional(path),
  /** The node name recorded with every allocation; the hostname by default. */
  node: optional(pipe(string(), minLength(1), maxLength(253))),
});
export type DaemonConfig = InferOutput<typeof DaemonConfigSchema>;

export interface ServeSettings {
  socket: string;
  db: string;
  node: string;
}

export class ConfigError extends Error {}

/** Reads the config file; a missing default file is fine, a missing named one is not. */
export async function loadConfig(file: string | undefined): Promise<DaemonConfig> {
  const path = file ?? DEFAULT_CONFIG;
  const handle = Bun.file(path);
  if (!(await handle.exists())) {
    if (file === undefined) return {};
    throw new ConfigError(`config file ${path} does not exist`);
  }
  let json: unknown;
  try {
    json = JSON.parse(await handle.text());
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = safeParse(DaemonConfigSchema, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const field = issue.path?.map((p) => String(p.key)).join(".") || "(top level)";
    throw new ConfigError(`config file ${path}: ${field}: ${issue.message}`);
  }
  return parsed.output;
}

export function resolveSettings(flags: Partial<ServeSettings>, config: DaemonConfig, hostname: string): ServeSettings {
  return {
    socket: flags.socket ?? config.socket ?? DEFAULT_SOCKET,
    db: flags.db ?? config.db ?? DEFAULT_DB,
    node: flags.node ?? config.node ?? hostname,
  };
}
