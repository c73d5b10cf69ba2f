/**
 * Real etcd for tests: Debian's etcd-server started on loopback ports, one member or a
 * 3-member cluster, optionally with TLS certificates made here with openssl (a CA, a server
 * certificate for 127.0.0.1, and client certificates). Every process and directory is
 * removed by the harness cleanup, even when a test fails.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { onCleanup, tempDir, waitFor } from "../e2e/harness.ts";

export interface Certs {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a different CA: must be refused. */
  rogueCert: string;
  rogueKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const proc = Bun.spawn(["openssl", ...args], { cwd, stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`openssl ${args[0]} failed: ${stderr}`);
}

export async function makeCerts(dir: string): Promise<Certs> {
  const days = ["-days", "2"];
  const ca = async (name: string) => {
    await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, ...days, "-subj", `/CN=${name}`], dir);
  };
  const leaf = async (name: string, caName: string, extensions: string) => {
    await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
    await Bun.write(join(dir, `${name}.ext`), extensions);
    await openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`, "-CAcreateserial", "-out", `${name}.crt`, ...days, "-extfile", `${name}.ext`], dir);
  };
  await ca("ca");
  await ca("rogue-ca");
  await leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  await leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
  await leaf("rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n");
  const p = (f: string) => join(dir, f);
  return { ca: p("ca.crt"), serverCert: p("server.crt"), serverKey: p("server.key"), clientCert: p("client.crt"), clientKey: p("client.key"), rogueCert: p("rogue.crt"), rogueKey: p("rogue.key") };
}

export interface EtcdCluster {
  endpoints: string[];
  certs: Certs | null;
  /** Kills member i (SIGKILL). */
  kill(i: number): Promise<void>;
  /** Starts member i again on its data dir. */
  start(i: number): Promise<void>;
}

// Below the kernel's ephemeral ports (32768 up): one an outgoing connection holds would keep a
// member from listening (a cluster that never elected a leader, once, in a full test run).
let portBase = 20000 + (process.pid % 1200) * 10;

export async function startEtcd(options: { members?: number; tls?: boolean } = {}): Promise<EtcdCluster> {
  const members = options.members ?? 1;
  const dir = tempDir("ipamd-etcd-");
  const certs = options.tls ? await makeCerts(dir) : null;
  const scheme = certs ? "https" : "http";
  const base = portBase;
  portBase += 10;
  const names = Array.from({ length: members }, (_, i) => `m${i}`);
  const client = (i: number) => `${scheme}://127.0.0.1:${base + i * 2}`;
  const peer = (i: number) => `${scheme}://127.0.0.1:${base + i * 2 + 1}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(",");
  const procs: (Subprocess | null)[] = names.map(() => null);
  const tlsArgs = certs
    ? ["--cert-file", certs.serverCert, "--key-file", certs.serverKey, "--trusted-ca-file", certs.ca, "--client-cert-auth",
       "--peer-cert-file", certs.serverCert, "--peer-key-file", certs.serverKey, "--peer-trusted-ca-file", certs.ca, "--peer-client-cert-auth"]
    : [];
  const start = async (i: number) => {
    const dataDir = join(dir, names[i]!);
    mkdirSync(dataDir, { recursive: true });
    const proc = Bun.spawn(
      ["etcd", "--name", names[i]!, "--data-dir", dataDir, "--listen-client-urls", client(i), "--advertise-client-urls", client(i),
       "--listen-peer-urls", peer(i), "--initial-advertise-peer-urls", peer(i), "--initial-cluster", initialCluster,
       "--initial-cluster-state", "new", "--initial-cluster-token", `ipamd-test-${base}`, "--heartbeat-interval", "50", "--election-timeout", "500",
       "--log-level", "error", ...tlsArgs],
      { stdout: "ignore", stderr: "ignore" },
    );
    procs[i] = proc;
  };
  onCleanup(async () => {
    for (const p of procs) if (p && p.exitCode === null) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p?.exited));
  });
  await Promise.all(names.map((_, i) => start(i)));
  const endpoints = names.map((_, i) => client(i));
  const tls = certs ? { ca: await Bun.file(certs.ca).text(), cert: await Bun.file(certs.clientCert).text(), key: await Bun.file(certs.clientKey).text() } : undefined;
  await waitFor(async () => {
    try {
      const res = await fetch(`${endpoints[0]}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: "X2hlYWx0aA==", value: "" }), signal: AbortSignal.timeout(500), ...(tls ? { tls } : {}) });
      return res.ok;
    } catch {
      return false;
    }
  }, 20_000, "etcd to elect a leader");
  return {
    endpoints,
    certs,
    async kill(i) {
      procs[i]?.kill("SIGKILL");
      await procs[i]?.exited;
    },
    start,
  };
}
