/**
 * Where an API server is and how to prove who we are: the one shape both the kubeconfig
 * loader and the in-cluster loader produce, and the only thing the transport needs.
 */
import { readFileSync, statSync } from "node:fs";

export interface KubeConnection {
  /** https://host:port, without a trailing slash. */
  server: string;
  /** PEM of the CA(s) that sign the server's certificate; the system's CAs when absent. */
  ca?: string;
  /** PEM of a client certificate and its key (mutual TLS). */
  clientCert?: string;
  clientKey?: string;
  /** The bearer token to send now (read again when its file changes), if any. */
  token?: () => string | undefined;
  /** kubeconfig's insecure-skip-tls-verify: the server's certificate is not checked. */
  insecureSkipTlsVerify?: boolean;
  /** kubeconfig's tls-server-name: the name the server's certificate is checked against. */
  tlsServerName?: string;
  /** The namespace to use when a caller names none (the context's, or the pod's own). */
  namespace: string;
  /** Where this came from, for messages: "kubeconfig /root/.kube/config (context x)". */
  source: string;
}

/**
 * A token read from a file and read again once the file changes: a ServiceAccount's projected
 * token is rotated by the kubelet (hourly by default), and a client that kept the first one
 * would be refused once it expires.
 */
export function tokenFromFile(path: string, recheckMs = 10_000): () => string {
  let token = "";
  let mtimeMs = -1;
  let checkedAt = -Infinity;
  const load = () => {
    const stat = statSync(path);
    if (stat.mtimeMs !== mtimeMs) {
      token = readFileSync(path, "utf8").trim();
      mtimeMs = stat.mtimeMs;
    }
    checkedAt = Date.now();
  };
  load();
  return () => {
    if (Date.now() - checkedAt >= recheckMs) {
      try {
        load();
      } catch {
        // The kubelet swaps the file by renaming a symlink; a check that lands mid-swap keeps
        // the token it has, which is still valid for a while.
      }
    }
    return token;
  };
}
