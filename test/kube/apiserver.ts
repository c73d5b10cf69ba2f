/**
 * A real kube-apiserver for tests, on loopback, backed by a real etcd, both built by
 * scripts/kube-apiserver/build.sh from the Go module proxy. Certificates come from makeCerts
 * (a CA, a 127.0.0.1 serving cert) plus an admin client cert (O=system:masters); an admin
 * bearer token is in a static token file. Every process and directory is registered with the
 * harness, so cleanup() removes them even when a test fails.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { onCleanup, tempDir, waitFor } from "../e2e/harness.ts";
import { makeCerts } from "../store/etcd-cluster.ts";

export const BUILD_SCRIPT = resolve(import.meta.dir, "../../scripts/kube-apiserver/build.sh");

export interface KubeApiserver {
  /** https://127.0.0.1:<port> */
  url: string;
  /** Path of the CA's PEM (signs the serving cert and the client certs). */
  ca: string;
  caPem: string;
  /** Bearer token of an admin (group system:masters). */
  token: string;
  /** A client certificate and key of an admin (O=system:masters), signed by `ca`. */
  clientCert: string;
  clientKey: string;
  /** A kubeconfig with the admin token, for kubectl and clients that read one. */
  kubeconfigPath: string;
  etcdEndpoint: string;
  /** The current kube-apiserver process's log so far. */
  logs(): Promise<string>;
  /** Stops kube-apiserver only (SIGTERM, or SIGKILL for a crash); etcd keeps its data. */
  stopApiserver(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts kube-apiserver again on the same port and etcd; resolves once /readyz is 200. */
  startApiserver(): Promise<void>;
  /** stopApiserver + startApiserver. */
  restart(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Stops kube-apiserver and etcd (cleanup() does too). */
  stop(): Promise<void>;
}

export interface KubeApiserverOptions {
  /** Allow a cold build (many minutes) when the binaries are not cached; tests leave this off. */
  build?: boolean;
  /** Extra kube-apiserver flags, appended last so they override ours. */
  args?: string[];
  readyTimeoutMs?: number;
  /** Let etcd fsync its writes, as in production (benchmarks); tests skip it (see startEtcd). */
  fsync?: boolean;
}

export async function kubeBinaries(build = false): Promise<{ apiserver: string; etcd: string }> {
  const proc = Bun.spawn(["bash", BUILD_SCRIPT, ...(build ? [] : ["--cached"])], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const value = (key: string) => stdout.match(new RegExp(`^${key}=(.+)$`, "m"))?.[1];
  const apiserver = value("KUBE_APISERVER");
  const etcd = value("ETCD");
  if (code !== 0 || !apiserver || !etcd) {
    throw new Error(
      `kube-apiserver is not built (exit ${code}). Build it once first, before the tests ` +
        `(cold: ~8 minutes on 2 cores): \`make kube-apiserver\` or \`scripts/kube-apiserver/build.sh\`.\n${stderr}${stdout}`,
    );
  }
  return { apiserver, etcd };
}

/** A loopback port nothing listens on now; the kernel picks it, so parallel test files don't collide. */
function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

async function run(cmd: string[], cwd: string): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed: ${stderr}`);
}

/** SIGTERM (or the given signal), then SIGKILL if it has not exited within 10 s. */
async function terminate(proc: Subprocess | null, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

async function tail(path: string, bytes = 4000): Promise<string> {
  const text = await Bun.file(path).text().catch(() => "");
  return text.slice(-bytes);
}

async function startEtcd(binary: string, dir: string, fsync = false): Promise<{ endpoint: string; proc: Subprocess }> {
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  const log = join(dir, "etcd.log");
  // --unsafe-no-fsync: a test's etcd dies with its temp dir, and fsync on a shared disk costs
  // seconds per burst; a killed process still leaves its writes in the page cache.
  const proc = Bun.spawn(
    [binary, "--name", "default", "--data-dir", join(dir, "etcd"), "--listen-client-urls", client, "--advertise-client-urls", client,
     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`,
     "--log-level", "warn", ...(fsync ? [] : ["--unsafe-no-fsync"])],
    { stdin: "ignore", stdout: "ignore", stderr: Bun.file(log) },
  );
  onCleanup(() => terminate(proc, "SIGKILL"));
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}:\n${await tail(log)}`);
    try {
      const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(500) });
      return res.ok && ((await res.json()) as { health?: string }).health === "true";
    } catch {
      return false;
    }
  }, 20_000, "etcd to be healthy");
  return { endpoint: client, proc };
}

export async function startKubeApiserver(options: KubeApiserverOptions = {}): Promise<KubeApiserver> {
  const binaries = await kubeBinaries(options.build ?? false);
  const dir = tempDir("ipamd-kube-");
  const certs = await makeCerts(dir);
  const pem = join(dir, "pki");
  mkdirSync(pem);
  // makeCerts' client cert has no group, so RBAC would refuse it; ours is an admin.
  const clientKey = join(pem, "admin.key");
  const clientCert = join(pem, "admin.crt");
  await run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", clientKey, "-out", "admin.csr", "-subj", "/O=system:masters/CN=ipamd-test-admin"], pem);
  await Bun.write(join(pem, "admin.ext"), "extendedKeyUsage=clientAuth\n");
  await run(["openssl", "x509", "-req", "-in", "admin.csr", "-CA", certs.ca, "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-out", clientCert, "-days", "2", "-extfile", "admin.ext"], pem);
  // The service-account signer: an EC key is made in milliseconds, an RSA one in up to a second.
  const saKey = join(pem, "sa.key");
  const saPub = join(pem, "sa.pub");
  await run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", saKey], pem);
  await run(["openssl", "pkey", "-in", saKey, "-pubout", "-out", saPub], pem);

  const token = crypto.randomUUID();
  const tokenFile = join(pem, "tokens.csv");
  await Bun.write(tokenFile, `${token},ipamd-test-admin,ipamd-test-admin,"system:masters"\n`);

  const etcd = await startEtcd(binaries.etcd, dir, options.fsync);
  const port = freePort();
  const url = `https://127.0.0.1:${port}`;
  const caPem = await Bun.file(certs.ca).text();

  const kubeconfigPath = join(dir, "kubeconfig");
  await Bun.write(kubeconfigPath, [
    "apiVersion: v1", "kind: Config", "current-context: ipamd-test",
    "clusters:", "- name: ipamd-test", "  cluster:", `    server: ${url}`, `    certificate-authority: ${certs.ca}`,
    "users:", "- name: admin", "  user:", `    token: ${token}`,
    "contexts:", "- name: ipamd-test", "  context:", "    cluster: ipamd-test", "    user: admin", "",
  ].join("\n"));

  const args = [
    "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", `--secure-port=${port}`, `--cert-dir=${pem}`,
    `--etcd-servers=${etcd.endpoint}`,
    `--tls-cert-file=${certs.serverCert}`, `--tls-private-key-file=${certs.serverKey}`, `--client-ca-file=${certs.ca}`,
    `--token-auth-file=${tokenFile}`, "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc", `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    // The reconciler publishes the advertise address as the kubernetes Service's endpoint and
    // refuses a loopback one; nothing in these tests runs in a pod to use it.
    "--endpoint-reconciler-type=none",
    // No controller-manager runs, so no namespace gets its "default" ServiceAccount: with this
    // admission plugin on, every Pod a test creates would be refused.
    "--disable-admission-plugins=ServiceAccount",
    "--profiling=false",
    ...(options.args ?? []),
  ];

  let proc: Subprocess | null = null;
  let starts = 0;
  let log = "";
  onCleanup(() => terminate(proc, "SIGKILL"));

  const ready = async (): Promise<boolean> => {
    try {
      const res = await fetch(`${url}/readyz`, { headers: { authorization: `Bearer ${token}` }, tls: { ca: caPem }, signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  };
  const startApiserver = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) throw new Error("kube-apiserver is already running");
    log = join(dir, `kube-apiserver.${++starts}.log`);
    const p = Bun.spawn([binaries.apiserver, ...args], { stdin: "ignore", stdout: "ignore", stderr: Bun.file(log) });
    proc = p;
    await waitFor(async () => {
      if (p.exitCode !== null) throw new Error(`kube-apiserver exited with ${p.exitCode}`);
      return ready();
    }, options.readyTimeoutMs ?? 90_000, "kube-apiserver /readyz to answer 200").catch(async (error) => {
      throw new Error(`${error.message}\n--- ${log} ---\n${await tail(log)}`);
    });
  };
  const stopApiserver = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM") => terminate(proc, signal);

  await startApiserver();
  return {
    url,
    ca: certs.ca,
    caPem,
    token,
    clientCert,
    clientKey,
    kubeconfigPath,
    etcdEndpoint: etcd.endpoint,
    logs: () => Bun.file(log).text(),
    stopApiserver,
    startApiserver,
    async restart(signal) {
      await stopApiserver(signal);
      await startApiserver();
    },
    async stop() {
      await stopApiserver();
      await terminate(etcd.proc);
    },
  };
}
