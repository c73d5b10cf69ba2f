/**
 * Credentials of a pod: its ServiceAccount's projected token, the cluster's CA and the pod's
 * namespace, mounted at /var/run/secrets/kubernetes.io/serviceaccount, and the API server's
 * address from the kubelet-set KUBERNETES_SERVICE_HOST/PORT. The directory and environment
 * are parameters so tests can point them at files of their own.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type KubeConnection, tokenFromFile } from "./connection.ts";
import { KubeconfigError, loadKubeconfig } from "./kubeconfig.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface InClusterOptions {
  dir?: string;
  env?: Record<string, string | undefined>;
  /** How often the token file is checked for a rotated token (default 10 s). */
  tokenRecheckMs?: number;
}

export function loadInClusterConfig(options: InClusterOptions = {}): KubeConnection {
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const env = options.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new KubeconfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), "utf8");
    } catch (error) {
      throw new KubeconfigError(`in-cluster config: cannot read ${join(dir, name)} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
  };
  const ca = read("ca.crt");
  read("token");
  const namespace = existsSync(join(dir, "namespace")) ? read("namespace").trim() : "";
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    token: tokenFromFile(join(dir, "token"), options.tokenRecheckMs),
    namespace: namespace || "default",
    source: `in-cluster ServiceAccount (${dir})`,
  };
}

export interface ConnectionOptions extends InClusterOptions {
  /** A kubeconfig file to use (a daemon's --kubeconfig flag); wins over everything else. */
  kubeconfig?: string;
  context?: string;
}

/**
 * kubectl's order, minus merging: an explicit kubeconfig, else $KUBECONFIG (its first file),
 * else the pod's ServiceAccount when running in a cluster, else ~/.kube/config.
 */
export function loadConnection(options: ConnectionOptions = {}): KubeConnection {
  const env = options.env ?? process.env;
  if (options.kubeconfig) return loadKubeconfig(options.kubeconfig, options);
  const fromEnv = env.KUBECONFIG?.split(":").find((p) => p !== "");
  if (fromEnv) return loadKubeconfig(fromEnv, options);
  if (env.KUBERNETES_SERVICE_HOST) return loadInClusterConfig(options);
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return loadKubeconfig(home, options);
  throw new KubeconfigError("no Kubernetes API credentials: no --kubeconfig, no $KUBECONFIG, not in a cluster, no ~/.kube/config");
}
