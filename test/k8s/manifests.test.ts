/**
 * The Kubernetes manifests, checked against the real binary: every file parses as YAML, the
 * DaemonSet has what a node-critical CNI component needs, and every container's command
 * runs — the installer for real into a fake host (so its files land exactly where the
 * hostPath volumes put them), the daemon with its flags and config (serving and answering
 * its probes, or `--check-config` when its store is elsewhere), the probes against it.
 * Image and paths must agree between the manifests, the Containerfile and the Makefile.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, cleanup, onCleanup, runPlugin, tempDir, waitFor } from "../e2e/harness.ts";
import { run, runOk } from "../install/helpers.ts";
import { STORE_RULES } from "../../src/store/kube/rbac.ts";
import { type Doc, mountHolding, podOf } from "./pod.ts";

afterEach(cleanup);

const ROOT = resolve(import.meta.dir, "../..");
const BASE = "k8s/ipamd.yaml";
const EXAMPLES = readdirSync(join(ROOT, "k8s/examples")).filter((f) => f.endsWith(".yaml")).map((f) => `k8s/examples/${f}`);
const FILES = [BASE, ...EXAMPLES];
const FIELDS = { "spec.nodeName": "node-a" };
const NAMESPACED = new Set(["ServiceAccount", "ConfigMap", "DaemonSet", "Secret", "Role", "RoleBinding"]);

function load(file: string): Doc[] {
  const parsed = Bun.YAML.parse(readFileSync(join(ROOT, file), "utf8"));
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((d) => d !== null);
}
const of = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);
const base = load(BASE);
const baseDs = of(base, "DaemonSet")[0]!;
const baseCm = of(base, "ConfigMap")[0]!;
const version = (await runOk(["version"])).stdout.trim().replace(/^ipamd /, "");

const containerfile = readFileSync(join(ROOT, "k8s/Containerfile"), "utf8");
const imageBinary = /^COPY\s+ipamd\s+(\S+)\s*$/m.exec(containerfile)?.[1];

/** Each DaemonSet to play out, with the ConfigMap it gets: its own file's, else the base one. */
const scenarios = FILES.flatMap((file) => {
  const docs = load(file);
  const cm = of(docs, "ConfigMap")[0] ?? baseCm;
  const ds = of(docs, "DaemonSet")[0] ?? baseDs;
  return [{ file, ds, cm }];
});

function allContainers(ds: Doc): Doc[] {
  return [...(ds.spec.template.spec.initContainers ?? []), ...ds.spec.template.spec.containers];
}

describe("k8s manifests", () => {
  test("every file is YAML of named objects, namespaced ones in the ipamd namespace", () => {
    expect(EXAMPLES.sort()).toEqual([
      "k8s/examples/one-cidr-across-nodes-kubernetes.yaml", "k8s/examples/one-cidr-across-nodes.yaml", "k8s/examples/pools-from-kubernetes.yaml", "k8s/examples/two-teams.yaml",
      "k8s/examples/unique-cidr-per-node.yaml",
    ]);
    for (const file of FILES) {
      for (const doc of load(file)) {
        expect({ file, apiVersion: typeof doc.apiVersion, kind: typeof doc.kind, name: typeof doc.metadata?.name }).toEqual({ file, apiVersion: "string", kind: "string", name: "string" });
        if (NAMESPACED.has(doc.kind)) expect({ file, kind: doc.kind, namespace: doc.metadata.namespace }).toEqual({ file, kind: doc.kind, namespace: "ipamd" });
      }
    }
    expect(base.map((d) => d.kind)).toEqual(["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"]);
  });

  test("the service account has no API permissions and mounts no token, unless pools come from the API (then it may read pools and namespaces) or the store is the API (then it may make the store's requests in its namespace), nothing more", () => {
    const sa = of(base, "ServiceAccount")[0]!;
    expect(sa.automountServiceAccountToken).toBe(false);
    for (const { file, ds } of scenarios) {
      const poolsFromKube = ds.spec.template.spec.containers.some((c: Doc) => c.args?.includes("--pools-from"));
      const serve = ds.spec.template.spec.containers.find((c: Doc) => c.args?.[0] === "serve");
      const storeIsKube = serve.args[serve.args.indexOf("--store") + 1] === "kubernetes";
      const rbac = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"].flatMap((kind) => of(load(file), kind));
      expect({ file, token: ds.spec.template.spec.automountServiceAccountToken }).toEqual({ file, token: poolsFromKube || storeIsKube });
      if (storeIsKube) {
        // Exactly the requests the store makes (src/store/kube/rbac.ts), in its namespace only.
        expect(rbac.map((r) => `${r.kind} ${r.metadata.name} ${r.metadata.namespace}`)).toEqual(["Role ipamd-store ipamd", "RoleBinding ipamd-store ipamd"]);
        expect(of(load(file), "Role")[0]!.rules).toEqual(STORE_RULES);
        expect(of(load(file), "RoleBinding")[0]!).toMatchObject({ roleRef: { kind: "Role", name: "ipamd-store" }, subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: "ipamd" }] });
        continue;
      }
      if (!poolsFromKube) {
        expect({ file, rbac }).toEqual({ file, rbac: [] });
        continue;
      }
      const [role] = of(load(file), "ClusterRole");
      expect(role!.rules).toEqual([
        { apiGroups: ["ipam.cluster.x-k8s.io"], resources: ["inclusterippools", "globalinclusterippools"], verbs: ["list", "watch"] },
        { apiGroups: [""], resources: ["namespaces"], verbs: ["list", "watch"] },
      ]);
      expect(of(load(file), "ClusterRoleBinding")[0]!.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: "ipamd" }]);
    }
    expect(baseDs.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(baseDs.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  test("the DaemonSet runs on every node, node-critical, on the host network, with requests and probes", () => {
    for (const { file, ds } of scenarios) {
      const spec = ds.spec.template.spec;
      expect({ file, hostNetwork: spec.hostNetwork, priority: spec.priorityClassName }).toEqual({ file, hostNetwork: true, priority: "system-node-critical" });
      expect(spec.tolerations).toContainEqual({ operator: "Exists" });
      expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
      for (const c of allContainers(ds)) {
        expect({ file, container: c.name, cpu: typeof c.resources?.requests?.cpu, memory: typeof c.resources?.requests?.memory }).toEqual({ file, container: c.name, cpu: "string", memory: "string" });
      }
      const [init] = spec.initContainers;
      expect(init.args[0]).toBe("install");
      const serve = spec.containers.find((c: Doc) => c.args?.[0] === "serve");
      for (const probe of [serve.readinessProbe, serve.livenessProbe]) expect(probe.exec.command.slice(0, 2)).toEqual([imageBinary, "status"]);
      // hostPath volumes: where the runtime looks for plugins and netconfs, the daemon's state.
      const hostPaths = Object.fromEntries(spec.volumes.filter((v: Doc) => v.hostPath).map((v: Doc) => [v.hostPath.path, v.name]));
      expect(Object.keys(hostPaths).sort()).toEqual(["/etc/cni/net.d", "/opt/cni/bin", "/run/ipamd", "/var/lib/ipamd", "/var/run/netns"]);
      const netns = serve.volumeMounts.find((m: Doc) => m.name === hostPaths["/var/run/netns"]);
      expect(netns).toMatchObject({ mountPath: "/var/run/netns", readOnly: true });
    }
  });

  test("one image everywhere: tagged with the binary's version, the Makefile's default, and the Containerfile's binary path", () => {
    expect(imageBinary).toBe("/usr/local/bin/ipamd");
    expect(containerfile).toMatch(/^FROM gcr\.io\/distroless\/base-debian12/m); // glibc: the Bun binary links it
    expect(containerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/ipamd"\]/m);
    const images = new Set(scenarios.flatMap(({ ds }) => allContainers(ds).map((c) => c.image)));
    expect([...images]).toEqual([`ipamd:${version}`]);
    const makefile = readFileSync(join(ROOT, "Makefile"), "utf8");
    expect(makefile).toMatch(/^IMAGE \?= ipamd:\$\(VERSION\)$/m);
    expect(makefile).toMatch(/build -f k8s\/Containerfile -t \$\(IMAGE\) dist$/m);
    for (const { ds } of scenarios) for (const c of allContainers(ds)) expect(c.command).toEqual([imageBinary]);
  });

  test("the examples fit the DaemonSet: same ConfigMap name and keys; the etcd and Kubernetes-API DaemonSets differ only in the store", () => {
    for (const file of EXAMPLES) {
      const cm = of(load(file), "ConfigMap")[0]!;
      expect({ file, name: cm.metadata.name, keys: Object.keys(cm.data).sort() }).toEqual({ file, name: baseCm.metadata.name, keys: Object.keys(baseCm.data).sort() });
    }
    const etcd = of(load("k8s/examples/one-cidr-across-nodes.yaml"), "DaemonSet")[0]!;
    const strip = (ds: Doc) => {
      const copy = structuredClone(ds);
      const spec = copy.spec.template.spec;
      spec.volumes = spec.volumes.filter((v: Doc) => !v.secret);
      const serve = spec.containers.find((c: Doc) => c.args?.[0] === "serve");
      const store = serve.args.indexOf("--store");
      if (store >= 0) serve.args = serve.args.slice(0, store); // the etcd flags come last
      serve.volumeMounts = serve.volumeMounts.filter((m: Doc) => !m.mountPath.startsWith("/etc/ipamd-etcd"));
      spec.automountServiceAccountToken = false; // the Kubernetes-API store's credentials
      return copy;
    };
    expect(strip(etcd)).toEqual(strip(baseDs));
    expect(strip(of(load("k8s/examples/one-cidr-across-nodes-kubernetes.yaml"), "DaemonSet")[0]!)).toEqual(strip(baseDs));
  });

  for (const { file, ds, cm } of scenarios) {
    test(`${file}: every container's command runs against the real binary`, async () => {
      const dir = tempDir("ipamd-k8s-");
      const pod = podOf(ds, new Map([[cm.metadata.name, cm]]), dir, imageBinary!, FIELDS);
      const spec = ds.spec.template.spec;
      const [init] = spec.initContainers;

      // The installer: --dry-run first (validates the netconf, writes nothing), then for real.
      const dry = await runOk([...pod.argv(init).slice(1), "--dry-run"]);
      expect(dry.stdout).toContain("would write binary");
      expect(readdirSync(join(pod.host, "opt/cni/bin"))).toEqual([]);
      await runOk(pod.argv(init).slice(1));
      const netconfKey = Object.keys(cm.data).find((k) => k.endsWith(".conflist") || k.endsWith(".conf"))!;
      expect(readFileSync(join(pod.host, "opt/cni/bin/ipamd")).equals(readFileSync(BINARY))).toBe(true);
      expect(readFileSync(join(pod.host, "etc/cni/net.d", netconfKey), "utf8")).toBe(cm.data[netconfKey]);

      // Every other container that installs runs too (--wait: until SIGTERM).
      for (const c of spec.containers.filter((c: Doc) => c.args?.[0] === "install")) {
        const proc = Bun.spawn(pod.argv(c), { stdout: "pipe", stderr: "pipe" });
        onCleanup(() => void (proc.exitCode === null && proc.kill("SIGKILL")));
        let out = "";
        (async () => {
          for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
        })();
        await waitFor(() => out.includes("watching") || proc.exitCode !== null, 10_000, `${c.name} to install`);
        expect(out).toContain("is up to date");
        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
      }

      // The daemon: its socket and db on hostPaths at the same path as on the host (where the
      // plugin, run by the runtime on the host, looks), its config from the ConfigMap.
      const serve = spec.containers.find((c: Doc) => c.args?.[0] === "serve");
      const checked = await runOk([...pod.argv(serve).slice(1), "--check-config"]);
      const settings = JSON.parse(checked.stdout);
      const netconf = JSON.parse(cm.data[netconfKey]);
      const ipam = netconf.plugins.find((p: Doc) => p.ipam?.type === "ipamd").ipam;
      const socketArg = serve.args[serve.args.indexOf("--socket") + 1];
      expect(settings.socket).toBe(pod.path(serve, socketArg));
      expect(ipam.socket ?? "/run/ipamd/ipamd.sock").toBe(socketArg);
      for (const [flag, hostPath] of [["--socket", "/run/ipamd"], ["--db", "/var/lib/ipamd"]] as const) {
        const p = serve.args[serve.args.indexOf(flag) + 1];
        const held = mountHolding(ds, serve, p);
        expect({ flag, hostPath: held?.volume.hostPath?.path, mountPath: held?.mount.mountPath }).toEqual({ flag, hostPath, mountPath: hostPath });
      }
      expect(settings.node).toBe("node-a");
      // Pools from the API are objects, not in the file.
      if (settings.poolsFrom !== "kubernetes") for (const pool of [ipam.pool, ...(ipam.pools ?? [])].filter(Boolean)) expect(settings.pools).toContain(pool);
      // A netconf naming no pool needs defaultPools to serve it.
      if (!ipam.pool && !ipam.pools && !ipam.ranges) expect(settings.defaultPools.length).toBeGreaterThan(0);
      for (const probe of [serve.readinessProbe, serve.livenessProbe]) expect(probe.exec.command).toEqual([imageBinary, "status", "--socket", socketArg]);

      if (settings.store === "etcd") {
        // Needs a real etcd to serve (test/e2e/cluster-store.test.ts); here: flags and Secret paths.
        expect(settings.etcd.endpoints.length).toBeGreaterThan(0);
        for (const e of settings.etcd.endpoints) expect(e).toStartWith("https://");
        for (const key of ["cacert", "cert", "key"]) {
          expect(existsSync(settings.etcd[key])).toBe(true); // provided by the Secret volume's items
          expect(statSync(settings.etcd[key]).isFile()).toBe(true);
        }
        return;
      }
      if (settings.store === "kubernetes") {
        // Needs a real API server to serve, with this file's Role (test/kube/store-example.test.ts);
        // here: the store's settings, its namespace the pod's own.
        expect({ namespace: settings.kubernetes.namespace, kubeconfig: settings.kubernetes.kubeconfig }).toEqual({ namespace: undefined, kubeconfig: undefined });
        expect(JSON.parse(cm.data["config.json"]).kubernetes).toBeDefined();
        return;
      }

      const daemon = Bun.spawn(pod.argv(serve), { stdout: "pipe", stderr: "pipe" });
      onCleanup(async () => {
        if (daemon.exitCode === null) {
          daemon.kill("SIGKILL");
          await daemon.exited;
        }
      });
      const probe = (p: Doc) => run(pod.argv(serve, p.exec.command).slice(1));
      await waitFor(async () => {
        if (daemon.exitCode !== null) throw new Error(`serve exited ${daemon.exitCode}: ${await new Response(daemon.stderr).text()}`);
        return (await probe(serve.readinessProbe)).exitCode === 0;
      }, 10_000, "the readiness probe to pass");
      expect((await probe(serve.livenessProbe)).exitCode).toBe(0);

      // The installed plugin with the installed netconf, as the runtime would run it.
      const plugin = { cniVersion: netconf.cniVersion, name: netconf.name, ...netconf.plugins.find((p: Doc) => p.ipam?.type === "ipamd") };
      plugin.ipam = { ...plugin.ipam, socket: settings.socket };
      const add = await runPlugin(
        { CNI_COMMAND: "ADD", CNI_CONTAINERID: "k8s1", CNI_NETNS: "/var/run/netns/k8s1", CNI_IFNAME: "eth0", CNI_PATH: join(pod.host, "opt/cni/bin"), CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0" },
        plugin,
        join(pod.host, "opt/cni/bin/ipamd"),
      );
      expect({ exitCode: add.exitCode, stderr: add.stderr }).toEqual({ exitCode: 0, stderr: "" });
      // One address from each named pool (the netconf's, or else the defaults this pod may
      // use: a group's first pool that serves node-a and namespace default), in the node's
      // subnet of its supernet.
      const config = JSON.parse(cm.data["config.json"]);
      const pools = config.pools;
      const serves = (name: string) => !pools[name].nodes && (!pools[name].namespaces || pools[name].namespaces.includes("default"));
      const defaults = (config.defaultPools ?? []).map((g: string | string[]) => (typeof g === "string" ? [g] : g).find(serves));
      const named = [ipam.pool, ...(ipam.pools ?? [])].filter(Boolean);
      const names: string[] = named.length > 0 ? named : defaults;
      expect(add.json.ips.map((ip: Doc) => ip.address.split("/")[1])).toEqual(names.map((n) => String(pools[n].nodeSubnetPrefix ?? pools[n].prefix)));
      daemon.kill("SIGTERM");
      expect(await daemon.exited).toBe(0);
    }, 60_000);
  }
});
