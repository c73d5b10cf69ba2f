/**
 * A kubeconfig file (what kubectl reads) to a KubeConnection: the current context (or a
 * named one), its cluster's server and CA, its user's token or client certificate. File
 * paths in it are relative to the file's directory, as kubectl resolves them; `-data`
 * fields are base64 PEM. Credential plugins (exec, auth-provider) and basic auth are refused
 * by name rather than half-supported: a daemon's credentials should be a token or a cert.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { array, boolean, type InferOutput, looseObject, nullish, safeParse, string, unknown } from "valibot";
import { type KubeConnection, tokenFromFile } from "./connection.ts";
import { describeIssues } from "./errors.ts";

const ClusterSchema = looseObject({
  server: string(),
  "certificate-authority": nullish(string()),
  "certificate-authority-data": nullish(string()),
  "insecure-skip-tls-verify": nullish(boolean()),
  "tls-server-name": nullish(string()),
});
const UserSchema = looseObject({
  token: nullish(string()),
  tokenFile: nullish(string()),
  "client-certificate": nullish(string()),
  "client-certificate-data": nullish(string()),
  "client-key": nullish(string()),
  "client-key-data": nullish(string()),
  exec: nullish(unknown()),
  "auth-provider": nullish(unknown()),
  username: nullish(string()),
});
const ContextSchema = looseObject({ cluster: string(), user: nullish(string()), namespace: nullish(string()) });

const KubeconfigSchema = looseObject({
  "current-context": nullish(string()),
  clusters: nullish(array(looseObject({ name: string(), cluster: ClusterSchema }))),
  users: nullish(array(looseObject({ name: string(), user: UserSchema }))),
  contexts: nullish(array(looseObject({ name: string(), context: ContextSchema }))),
});
type KubeconfigUser = InferOutput<typeof UserSchema>;

export class KubeconfigError extends Error {
  override name = "KubeconfigError";
}

export interface KubeconfigOptions {
  /** A context other than current-context. */
  context?: string;
}

/** The connection a kubeconfig file describes; every problem is a KubeconfigError naming the file. */
export function loadKubeconfig(path: string, options: KubeconfigOptions = {}): KubeConnection {
  const fail = (message: string): never => {
    throw new KubeconfigError(`kubeconfig ${path}: ${message}`);
  };
  let data: unknown;
  try {
    data = Bun.YAML.parse(readFileSync(path, "utf8"));
  } catch (error) {
    return fail(`cannot be read as YAML (${(error as Error).message})`);
  }
  const parsed = safeParse(KubeconfigSchema, data ?? {});
  if (!parsed.success) return fail(describeIssues(parsed.issues));
  const config = parsed.output;
  const contextName = options.context ?? config["current-context"] ?? fail("has no current-context");
  const context = find(config.contexts, contextName, "context", fail).context;
  const cluster = find(config.clusters, context.cluster, "cluster", fail).cluster;
  const user: Partial<KubeconfigUser> = context.user ? find(config.users, context.user, "user", fail).user : {};
  const base = dirname(resolve(path));
  const absolute = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const file = (p: string): string => {
    try {
      return readFileSync(absolute(p), "utf8");
    } catch (error) {
      return fail(`cannot read ${absolute(p)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  const data64 = (b64: string) => Buffer.from(b64, "base64").toString("utf8");
  const pem = (inline: string | null | undefined, filePath: string | null | undefined) =>
    inline ? data64(inline) : filePath ? file(filePath) : undefined;

  const unsupported = user.exec ? "exec (a credential plugin)" : user["auth-provider"] ? "auth-provider" : user.username ? "username (basic auth)" : null;
  if (unsupported) fail(`user ${context.user}: ${unsupported} is not supported; use a token or a client certificate`);
  const u = user;
  const staticToken = u.token ?? undefined;
  const tokenFilePath = u.tokenFile ? absolute(u.tokenFile) : undefined;
  if (tokenFilePath) file(tokenFilePath);
  const connection: KubeConnection = {
    server: cluster.server.replace(/\/+$/, ""),
    ca: pem(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    clientCert: pem(u["client-certificate-data"], u["client-certificate"]),
    clientKey: pem(u["client-key-data"], u["client-key"]),
    token: staticToken ? () => staticToken : tokenFilePath ? tokenFromFile(tokenFilePath) : undefined,
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] ?? false,
    namespace: context.namespace ?? "default",
    tlsServerName: cluster["tls-server-name"] ?? undefined,
    source: `kubeconfig ${path} (context ${contextName})`,
  };
  if (!/^https?:\/\//.test(connection.server)) fail(`cluster ${context.cluster}: server ${cluster.server} is not an http(s) URL`);
  if (Boolean(connection.clientCert) !== Boolean(connection.clientKey)) fail(`user ${context.user}: a client certificate needs its key and a key its certificate`);
  return connection;
}

function find<T extends { name: string }>(list: T[] | null | undefined, name: string, what: string, fail: (m: string) => never): T {
  return list?.find((entry) => entry.name === name) ?? fail(`names ${what} "${name}", which it does not define`);
}
