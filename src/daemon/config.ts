/**
 * The daemon's config file (`serve --config FILE`, default /etc/ipamd/config.json). Flags on
 * the command line win over the file; the file wins over built-in defaults. Unknown keys are
 * refused so a typo is an error at start-up, not a silently ignored setting.
 */
import { array, type InferOutput, maxLength, maxValue, minLength, minValue, number, optional, picklist, pipe, record, regex, safeParse, strictObject, string } from "valibot";
import { firstIssue, IpamError } from "../errors.ts";
import { compilePools, NamedPoolSchema } from "../ipam/named-pool.ts";
import { DEFAULT_SOCKET, NAME_PATTERN, PoolNamesSchema } from "../protocol.ts";
import { choiceGroups, type PoolSetup } from "../ipam/pool-choice.ts";

export const DEFAULT_CONFIG = "/etc/ipamd/config.json";
export const DEFAULT_DB = "/var/lib/ipamd/ipamd.db";

const path = pipe(string(), minLength(1), maxLength(4096));

export const DaemonConfigSchema = strictObject({
  socket: optional(path),
  db: optional(path),
  /** The node name recorded with every allocation; the hostname by default. */
  node: optional(pipe(string(), minLength(1), maxLength(253))),
  /** Named pools (Cluster API in-cluster rules, or a supernet split per node), by name. */
  pools: optional(record(pipe(string(), regex(NAME_PATTERN, "a pool name is letters, digits, '_', '.' and '-'"), maxLength(253)), NamedPoolSchema)),
  /**
   * Where a netconf that names no ranges and no pool takes its addresses: one from each
   * element (an element may be a fallback list), after the pools scoped to the pod's namespace.
   */
  defaultPools: optional(PoolNamesSchema),
  /** Seconds between leak sweeps (0 turns the periodic sweep off; `ipamd gc` still works). */
  reclaimInterval: optional(pipe(number(), minValue(0), maxValue(86_400))),
  /** Seconds a netns must have been gone (and an allocation must have lived) before reclaiming. */
  reclaimGrace: optional(pipe(number(), minValue(0), maxValue(30 * 86_400))),
  /** Directories whose netns paths the leak sweep may judge (must be visible to the daemon). */
  reclaimNetnsDirs: optional(pipe(array(path), maxLength(16))),
  /** Days history events are kept. */
  historyRetention: optional(pipe(number(), minValue(0.001), maxValue(3650))),
  /** Utilization percentages that log a warning when a pool crosses them. */
  utilizationThresholds: optional(pipe(array(pipe(number(), minValue(1), maxValue(100))), maxLength(8))),
  /** `sqlite` (embedded, default), `etcd` or `kubernetes` (both shared by every node's daemon). */
  store: optional(picklist(["sqlite", "etcd", "kubernetes"])),
  etcd: optional(
    strictObject({
      endpoints: optional(pipe(array(pipe(string(), minLength(1))), maxLength(16))),
      cacert: optional(path),
      cert: optional(path),
      key: optional(path),
      prefix: optional(pipe(string(), minLength(1), maxLength(256))),
      /** Seconds without keep-alive after which a node counts as gone. */
      nodeTTL: optional(pipe(number(), minValue(2), maxValue(3600))),
      blockPrefixV4: optional(pipe(number(), minValue(8), maxValue(30))),
      blockPrefixV6: optional(pipe(number(), minValue(64), maxValue(126))),
    }),
  ),
  /** The Kubernetes-API store (`--store kubernetes`). */
  kubernetes: optional(
    strictObject({
      /** Where its objects live; the daemon's own namespace (or the kubeconfig context's) by default. */
      namespace: optional(pipe(string(), minLength(1), maxLength(63))),
      nodeTTL: optional(pipe(number(), minValue(2), maxValue(3600))),
      /** A block is one object, sent whole on each write: at most 256 addresses. */
      blockPrefixV4: optional(pipe(number(), minValue(24), maxValue(30))),
      blockPrefixV6: optional(pipe(number(), minValue(120), maxValue(126))),
    }),
  ),
});
export type DaemonConfig = InferOutput<typeof DaemonConfigSchema>;

export interface ServeSettings {
  socket: string;
  db: string;
  node: string;
  reclaimIntervalMs: number;
  reclaimGraceMs: number;
  reclaimNetnsDirs: string[];
  historyRetentionMs: number;
  utilizationThresholds: number[];
  store: StoreKind;
  etcd: { endpoints: string[]; cacert?: string; cert?: string; key?: string; prefix: string } & SharedStoreSettings;
  kubernetes: { namespace?: string; kubeconfig?: string } & SharedStoreSettings;
}

export type StoreKind = "sqlite" | "etcd" | "kubernetes";

/** What every shared store is told: how long a silent node counts as alive, and the blocks' size. */
export interface SharedStoreSettings {
  nodeTtlSeconds: number;
  blockPrefixV4: number;
  blockPrefixV6: number;
}

/** The shared-store settings of the store in use (the embedded store has none that matter: it takes etcd's defaults). */
export const sharedSettingsOf = (settings: ServeSettings): SharedStoreSettings => (settings.store === "kubernetes" ? settings.kubernetes : settings.etcd);

export interface ServeFlags {
  socket?: string;
  db?: string;
  node?: string;
  config?: string;
  store?: string;
  etcdEndpoints?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdPrefix?: string;
  /** The Kubernetes-API store's namespace. */
  kubeNamespace?: string;
  adminListen?: string;
  /** --admin-host, as given (each may hold several comma-separated names). */
  adminHosts?: string[];
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
  /** `kubernetes`: pools also from InClusterIPPool/GlobalInClusterIPPool objects, watched. */
  poolsFrom?: string;
  /** Credentials for the Kubernetes API (else $KUBECONFIG, the pod's ServiceAccount, ~/.kube/config). */
  kubeconfig?: string;
}

export class ConfigError extends Error {}

export interface LoadedConfig {
  config: DaemonConfig;
  setup: PoolSetup;
}

/**
 * Reads and validates the config file (JSON, or YAML by its .yaml/.yml name) and compiles its
 * pools; a missing default file is fine, a missing named one is not. Every problem is a
 * ConfigError naming the file and the field.
 */
export async function loadConfig(file: string | undefined): Promise<LoadedConfig> {
  const path = file ?? DEFAULT_CONFIG;
  const handle = Bun.file(path);
  if (!(await handle.exists())) {
    if (file === undefined) return { config: {}, setup: { pools: new Map(), defaults: [] } };
    throw new ConfigError(`config file ${path} does not exist`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  let data: unknown;
  try {
    const text = await handle.text();
    data = yaml ? Bun.YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid ${yaml ? "YAML" : "JSON"}: ${(err as Error).message}`);
  }
  const parsed = safeParse(DaemonConfigSchema, data ?? {});
  if (!parsed.success) {
    throw new ConfigError(`config file ${path}: ${firstIssue(parsed.issues)}`);
  }
  try {
    const pools = compilePools(parsed.output.pools ?? {});
    return { config: parsed.output, setup: { pools, defaults: choiceGroups(parsed.output.defaultPools ?? [], pools, "defaultPools") } };
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${err instanceof IpamError ? err.message : String(err)}`);
  }
}

export function resolveSettings(flags: ServeFlags, config: DaemonConfig, hostname: string): ServeSettings {
  return {
    socket: flags.socket ?? config.socket ?? DEFAULT_SOCKET,
    db: flags.db ?? config.db ?? DEFAULT_DB,
    node: flags.node ?? config.node ?? hostname,
    reclaimIntervalMs: (config.reclaimInterval ?? 60) * 1000,
    reclaimGraceMs: (config.reclaimGrace ?? 300) * 1000,
    reclaimNetnsDirs: config.reclaimNetnsDirs ?? ["/var/run/netns", "/run/netns"],
    historyRetentionMs: (config.historyRetention ?? 30) * 86_400_000,
    utilizationThresholds: [...(config.utilizationThresholds ?? [80, 95])].sort((a, b) => a - b),
    store: storeKind(flags.store ?? config.store ?? "sqlite"),
    etcd: {
      endpoints: flags.etcdEndpoints?.split(",").map((e) => e.trim()).filter(Boolean) ?? config.etcd?.endpoints ?? [],
      cacert: flags.etcdCacert ?? config.etcd?.cacert,
      cert: flags.etcdCert ?? config.etcd?.cert,
      key: flags.etcdKey ?? config.etcd?.key,
      prefix: flags.etcdPrefix ?? config.etcd?.prefix ?? "/ipamd/",
      nodeTtlSeconds: config.etcd?.nodeTTL ?? 60,
      blockPrefixV4: config.etcd?.blockPrefixV4 ?? 26,
      blockPrefixV6: config.etcd?.blockPrefixV6 ?? 122,
    },
    kubernetes: {
      namespace: flags.kubeNamespace ?? config.kubernetes?.namespace,
      kubeconfig: flags.kubeconfig,
      nodeTtlSeconds: config.kubernetes?.nodeTTL ?? 60,
      blockPrefixV4: config.kubernetes?.blockPrefixV4 ?? 26,
      blockPrefixV6: config.kubernetes?.blockPrefixV6 ?? 122,
    },
  };
}

function storeKind(kind: string): StoreKind {
  if (kind === "sqlite" || kind === "etcd" || kind === "kubernetes") return kind;
  throw new ConfigError(`--store must be sqlite, etcd or kubernetes, not "${kind}"`);
}
