/**
 * Where credentials come from, proved by asking a real API server who we are
 * (SelfSubjectReview): kubeconfig files (token, tokenFile, client certificate as files or
 * inline data, relative paths, contexts), a pod's ServiceAccount directory with a real token
 * from the TokenRequest API (and RBAC that then applies to it), a rotated token file, and
 * the order in which loadConnection looks. Bad files fail with the file and the problem named.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir, waitFor } from "../e2e/harness.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { ForbiddenError, KubeConnectionError } from "../../src/kube/errors.ts";
import { loadConnection, loadInClusterConfig } from "../../src/kube/in-cluster.ts";
import { KubeconfigError, loadKubeconfig } from "../../src/kube/kubeconfig.ts";
import { applyManifest, Discovery, type Manifest } from "../../src/kube/manifests.ts";
import { ConfigMaps, Namespaces } from "../../src/kube/resources.ts";
import type { KubeConnection } from "../../src/kube/connection.ts";
import { type KubeApiserver, startKubeApiserver } from "./apiserver.ts";
import { adminClient, FIELD_MANAGER } from "./helpers.ts";

afterAll(cleanup);

let kube: KubeApiserver;
let admin: KubeClient;
let port: string;
const b64 = (text: string) => Buffer.from(text).toString("base64");

beforeAll(async () => {
  kube = await startKubeApiserver();
  admin = adminClient(kube);
  port = new URL(kube.url).port;
}, 120_000);

/** The user name the server authenticated this connection as. */
async function whoami(connection: KubeConnection): Promise<string> {
  const review = (await KubeClient.connect(connection).transport.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
  })) as { status?: { userInfo?: { username?: string } } };
  return review.status?.userInfo?.username ?? "(none)";
}

function kubeconfig(dir: string, users: Record<string, Record<string, string>>, contexts: Record<string, { user: string; namespace?: string }>, current: string, cluster: Record<string, unknown> = { "certificate-authority": kube.ca }): string {
  const path = join(dir, "kubeconfig");
  writeFileSync(path, Bun.YAML.stringify({
    apiVersion: "v1", kind: "Config", "current-context": current,
    clusters: [{ name: "test", cluster: { server: kube.url, ...cluster } }],
    users: Object.entries(users).map(([name, user]) => ({ name, user })),
    contexts: Object.entries(contexts).map(([name, c]) => ({ name, context: { cluster: "test", ...c } })),
  }));
  return path;
}

/** A ServiceAccount and a token for it from the TokenRequest API, as the kubelet would mount. */
async function serviceAccountToken(namespace: string, name: string): Promise<string> {
  await admin.create(Namespaces, { metadata: { name: namespace } });
  await admin.transport.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, { body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } } });
  const answer = (await admin.transport.request("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  })) as { status: { token: string } };
  return answer.status.token;
}

describe("kubeconfig", () => {
  test("the test server's kubeconfig (token, CA file) authenticates as its admin", async () => {
    const connection = loadKubeconfig(kube.kubeconfigPath);
    expect(connection).toMatchObject({ server: kube.url, namespace: "default" });
    expect(await whoami(connection)).toBe("ipamd-test-admin");
  });

  test("a client certificate, inline as data or as files relative to the kubeconfig, authenticates as its subject", async () => {
    const dir = tempDir("ipamd-kubeconfig-");
    mkdirSync(join(dir, "pki"));
    copyFileSync(kube.clientCert, join(dir, "pki/admin.crt"));
    copyFileSync(kube.clientKey, join(dir, "pki/admin.key"));
    const [cert, key] = [readFileSync(kube.clientCert, "utf8"), readFileSync(kube.clientKey, "utf8")];
    const path = kubeconfig(dir, {
      inline: { "client-certificate-data": b64(cert), "client-key-data": b64(key) },
      files: { "client-certificate": "pki/admin.crt", "client-key": "pki/admin.key" },
    }, { inline: { user: "inline" }, files: { user: "files", namespace: "team-a" } }, "inline", { "certificate-authority-data": b64(kube.caPem) });
    const inline = loadKubeconfig(path);
    expect(inline.token).toBeUndefined();
    expect(await whoami(inline)).toBe("ipamd-test-admin");
    const files = loadKubeconfig(path, { context: "files" });
    expect(files.namespace).toBe("team-a");
    expect(await whoami(files)).toBe("ipamd-test-admin");
  });

  test("tls-server-name picks the name the certificate is checked against; insecure-skip-tls-verify checks nothing", async () => {
    const dir = tempDir("ipamd-kubeconfig-");
    const users = { admin: { token: kube.token } };
    const contexts = { c: { user: "admin" } };
    // The serving certificate names 127.0.0.1 and localhost, nothing else.
    expect(await whoami(loadKubeconfig(kubeconfig(dir, users, contexts, "c", { "certificate-authority": kube.ca, "tls-server-name": "localhost" })))).toBe("ipamd-test-admin");
    const wrongName = loadKubeconfig(kubeconfig(dir, users, contexts, "c", { "certificate-authority": kube.ca, "tls-server-name": "api.example.com" }));
    expect(await whoami(wrongName).then(() => null, (e) => e)).toBeInstanceOf(KubeConnectionError);
    const noCa = loadKubeconfig(kubeconfig(dir, users, contexts, "c", {}));
    expect(await whoami(noCa).then(() => null, (e) => e)).toBeInstanceOf(KubeConnectionError);
    const insecure = loadKubeconfig(kubeconfig(dir, users, contexts, "c", { "insecure-skip-tls-verify": true }));
    expect(await whoami(insecure)).toBe("ipamd-test-admin");
  });

  test("a tokenFile is read relative to the kubeconfig", async () => {
    const dir = tempDir("ipamd-kubeconfig-");
    const token = await serviceAccountToken("kc-token", "reader");
    writeFileSync(join(dir, "token"), `${token}\n`);
    const path = kubeconfig(dir, { sa: { tokenFile: "token" } }, { sa: { user: "sa" } }, "sa");
    expect(await whoami(loadKubeconfig(path))).toBe("system:serviceaccount:kc-token:reader");
  });

  test("a bad kubeconfig fails naming the file and what is wrong", () => {
    const dir = tempDir("ipamd-kubeconfig-");
    const failure = (users: Record<string, Record<string, string>>, current = "c", cluster?: Record<string, string>) => {
      const path = kubeconfig(dir, users, { c: { user: "u" } }, current, cluster);
      try {
        loadKubeconfig(path);
      } catch (error) {
        expect(error).toBeInstanceOf(KubeconfigError);
        expect((error as Error).message).toStartWith(`kubeconfig ${path}: `);
        return (error as Error).message.slice(`kubeconfig ${path}: `.length);
      }
      throw new Error("expected loadKubeconfig to fail");
    };
    expect(failure({ u: { token: "t" } }, "missing")).toBe('names context "missing", which it does not define');
    expect(failure({ other: { token: "t" } })).toBe('names user "u", which it does not define');
    expect(failure({ u: { exec: "x" } as Record<string, string> })).toBe("user u: exec (a credential plugin) is not supported; use a token or a client certificate");
    expect(failure({ u: { "client-certificate-data": b64("x") } })).toBe("user u: a client certificate needs its key and a key its certificate");
    expect(failure({ u: { token: "t" } }, "c", { "certificate-authority": "no-such-ca.crt" })).toBe(`cannot read ${join(dir, "no-such-ca.crt")} (ENOENT)`);
    writeFileSync(join(dir, "broken"), "clusters: [unclosed");
    expect(() => loadKubeconfig(join(dir, "broken"))).toThrow(/cannot be read as YAML/);
  });
});

describe("in-cluster", () => {
  test("a ServiceAccount's directory and the service env authenticate as the ServiceAccount, and RBAC applies", async () => {
    const token = await serviceAccountToken("pod-ns", "ipamd");
    const dir = tempDir("ipamd-sa-");
    writeFileSync(join(dir, "token"), token);
    writeFileSync(join(dir, "ca.crt"), kube.caPem);
    writeFileSync(join(dir, "namespace"), "pod-ns");
    const connection = loadInClusterConfig({ dir, env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port } });
    expect(connection).toMatchObject({ server: kube.url, namespace: "pod-ns" });
    expect(await whoami(connection)).toBe("system:serviceaccount:pod-ns:ipamd");

    const pod = KubeClient.connect(connection);
    expect(await pod.list(ConfigMaps, { namespace: pod.defaultNamespace }).then(() => null, (e) => e)).toBeInstanceOf(ForbiddenError);
    const discovery = new Discovery(admin);
    const rbac: Manifest[] = [
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "read-configmaps", namespace: "pod-ns" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["list"] }] } as Manifest,
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "ipamd-reads", namespace: "pod-ns" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read-configmaps" }, subjects: [{ kind: "ServiceAccount", name: "ipamd", namespace: "pod-ns" }] } as Manifest,
    ];
    for (const manifest of rbac) await applyManifest(admin, discovery, manifest, { fieldManager: FIELD_MANAGER });
    // The authorizer reads RBAC from its own watch cache: allowed a moment after the write.
    await waitFor(() => pod.list(ConfigMaps, { namespace: "pod-ns" }).then(() => true, () => false), 10_000, "the RoleBinding to take effect");
  });

  test("a rotated token file is used once it changes", async () => {
    const dir = tempDir("ipamd-sa-");
    writeFileSync(join(dir, "token"), kube.token);
    writeFileSync(join(dir, "ca.crt"), kube.caPem);
    const connection = loadInClusterConfig({ dir, env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port }, tokenRecheckMs: 0 });
    expect(connection.namespace).toBe("default");
    expect(await whoami(connection)).toBe("ipamd-test-admin");
    // The kubelet swaps the file by rename; so do we, a second newer (a change is seen by mtime).
    writeFileSync(join(dir, "token.new"), await serviceAccountToken("rotated", "ipamd"));
    const newer = new Date(statSync(join(dir, "token")).mtimeMs + 1000);
    utimesSync(join(dir, "token.new"), newer, newer);
    renameSync(join(dir, "token.new"), join(dir, "token"));
    expect(await whoami(connection)).toBe("system:serviceaccount:rotated:ipamd");
  });

  test("loadConnection: --kubeconfig, then $KUBECONFIG, then the ServiceAccount, then ~/.kube/config", () => {
    const sa = tempDir("ipamd-sa-");
    writeFileSync(join(sa, "token"), "t");
    writeFileSync(join(sa, "ca.crt"), kube.caPem);
    const home = tempDir("ipamd-home-");
    mkdirSync(join(home, ".kube"));
    copyFileSync(kube.kubeconfigPath, join(home, ".kube/config"));
    const inCluster = { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" };
    const source = (options: Parameters<typeof loadConnection>[0]) => loadConnection({ dir: sa, ...options }).source;
    expect(source({ kubeconfig: kube.kubeconfigPath, env: { KUBECONFIG: "/nowhere", ...inCluster } })).toStartWith(`kubeconfig ${kube.kubeconfigPath}`);
    expect(source({ env: { KUBECONFIG: `${kube.kubeconfigPath}:/other`, ...inCluster } })).toStartWith(`kubeconfig ${kube.kubeconfigPath}`);
    expect(loadConnection({ dir: sa, env: { ...inCluster, HOME: home } })).toMatchObject({ server: "https://[fd00::1]:443", source: `in-cluster ServiceAccount (${sa})` });
    expect(source({ env: { HOME: home } })).toStartWith(`kubeconfig ${join(home, ".kube/config")}`);
    expect(() => loadConnection({ env: { HOME: tempDir("ipamd-home-") } })).toThrow(KubeconfigError);
  });
});
