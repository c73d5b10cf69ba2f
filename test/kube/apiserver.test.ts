/**
 * The test kube-apiserver itself: a real server on a real etcd answers core objects and a
 * CustomResourceDefinition, and survives a restart with its data. Needs the binaries built
 * beforehand (`make kube-apiserver`); a cold build takes far longer than any test timeout.
 */
import { afterAll, expect, test } from "bun:test";
import { cleanup, waitFor } from "../e2e/harness.ts";
import { type KubeApiserver, startKubeApiserver } from "./apiserver.ts";

afterAll(cleanup);

let kube: KubeApiserver;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${kube.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${kube.token}`, "content-type": "application/json", accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    tls: { ca: kube.caPem },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

const CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.test.ipamd.io" },
  spec: {
    group: "test.ipamd.io",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [{
      name: "v1", served: true, storage: true,
      schema: { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer" } } } } } },
    }],
  },
};

test("a real kube-apiserver serves namespaces, configmaps and a CRD's objects", async () => {
  const started = performance.now();
  kube = await startKubeApiserver();
  console.log(`kube-apiserver ready in ${Math.round(performance.now() - started)} ms at ${kube.url}`);

  expect((await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "ipamd-test" } })).status).toBe(201);
  const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "pools" }, data: { subnet: "10.20.0.0/24" } };
  expect((await api("POST", "/api/v1/namespaces/ipamd-test/configmaps", cm)).status).toBe(201);
  const read = await api("GET", "/api/v1/namespaces/ipamd-test/configmaps/pools");
  expect(read.status).toBe(200);
  expect(read.json.data).toEqual({ subnet: "10.20.0.0/24" });

  // An unauthenticated caller is anonymous; RBAC must refuse it.
  const anonymous = await fetch(`${kube.url}/api/v1/namespaces`, { tls: { ca: kube.caPem } });
  expect([401, 403]).toContain(anonymous.status);
  // The admin client certificate authenticates as well as the token.
  const cert = await fetch(`${kube.url}/api/v1/namespaces/ipamd-test`, {
    tls: { ca: kube.caPem, cert: await Bun.file(kube.clientCert).text(), key: await Bun.file(kube.clientKey).text() },
  });
  expect(cert.status).toBe(200);

  expect((await api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)).status).toBe(201);
  await waitFor(async () => {
    const { json } = await api("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.ipamd.io");
    return (json?.status?.conditions ?? []).some((c: any) => c.type === "Established" && c.status === "True");
  }, 30_000, "the CRD to be Established");
  const widget = { apiVersion: "test.ipamd.io/v1", kind: "Widget", metadata: { name: "w1" }, spec: { size: 3 } };
  // Established can precede the handler by a moment; a 404 then is not yet a failure.
  let created = { status: 0, json: null as any };
  await waitFor(async () => {
    created = await api("POST", "/apis/test.ipamd.io/v1/namespaces/ipamd-test/widgets", widget);
    return created.status !== 404;
  }, 10_000, "the CRD's endpoint");
  expect(created.status).toBe(201);
  expect((await api("GET", "/apis/test.ipamd.io/v1/namespaces/ipamd-test/widgets/w1")).json.spec).toEqual({ size: 3 });
}, 120_000);

test("a restarted kube-apiserver comes back on the same URL with its data", async () => {
  if (!kube) throw new Error("the first test did not start kube-apiserver");
  const killed = performance.now();
  await kube.restart("SIGKILL");
  console.log(`kube-apiserver restarted (SIGKILL) and ready in ${Math.round(performance.now() - killed)} ms`);
  expect((await api("GET", "/api/v1/namespaces/ipamd-test/configmaps/pools")).json.data).toEqual({ subnet: "10.20.0.0/24" });
  expect((await api("GET", "/apis/test.ipamd.io/v1/namespaces/ipamd-test/widgets/w1")).status).toBe(200);
  await kube.stop();
  const down = await fetch(`${kube.url}/readyz`, { tls: { ca: kube.caPem } }).then((r) => r.status, () => "refused");
  expect(down).toBe("refused");
}, 120_000);
