/**
 * `serve --pools-from kubernetes`: the daemon's pools also come from InClusterIPPool and
 * GlobalInClusterIPPool objects, watched. Each change is installed as a reload is (the same
 * rules: a pool that cannot be installed leaves the running pools as they were, and says why);
 * objects that make no pool are logged once each until they change.
 */
import type { ConsolaInstance } from "consola/core";
import type { Engine } from "../engine/engine.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import { KubeClient } from "../kube/client.ts";
import { loadConnection } from "../kube/in-cluster.ts";
import { installObjectPools } from "../pool-source/install.ts";
import { PoolSource } from "../pool-source/pool-source.ts";

export const POOLS_FROM = ["config", "kubernetes"] as const;

export function poolsFromOf(value: string | undefined): (typeof POOLS_FROM)[number] {
  if (value === undefined || (POOLS_FROM as readonly string[]).includes(value)) return (value ?? "config") as (typeof POOLS_FROM)[number];
  throw new IpamError(ErrorCode.InvalidNetworkConfig, `--pools-from must be config or kubernetes, not "${value}"`);
}

/** How long start-up waits for the first list before serving the config file's pools alone. */
const FIRST_LIST_WAIT_MS = 3_000;

/**
 * Starts watching. The daemon does not wait for an API server that does not answer: after a
 * while it serves the config file's pools, and installs the objects' when they arrive.
 */
export async function watchKubePools(engine: Engine, base: PoolSetup, kubeconfig: string | undefined, log: ConsolaInstance): Promise<PoolSource> {
  const client = KubeClient.connect(loadConnection({ kubeconfig }));
  let told = new Set<string>();
  const source = new PoolSource({
    client,
    base,
    onChange: async (setup, problems, fromObjects) => {
      try {
        await installObjectPools(engine, setup, problems, fromObjects);
        log.info("pools from kubernetes installed", { pools: [...setup.pools.keys()] });
      } catch (err) {
        log.error("pools from kubernetes not installed; keeping the running pools (tried again shortly)", { error: (err as Error).message });
        throw err;
      } finally {
        for (const problem of problems) if (!told.has(problem)) log.warn("a pool object makes no pool", { problem });
        told = new Set(problems);
      }
    },
    onError: (error) => log.warn("watching pools in kubernetes", { error: (error as Error).message }),
  });
  const started = source.start().then(
    () => true,
    (err) => {
      log.warn("pools from kubernetes: first list failed; retrying", { error: (err as Error).message });
      return false;
    },
  );
  if (!(await Promise.race([started, Bun.sleep(FIRST_LIST_WAIT_MS).then(() => false)]))) {
    log.warn("pools from kubernetes not listed yet: serving the config file's pools meanwhile");
  }
  return source;
}
