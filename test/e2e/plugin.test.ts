/**
 * dist/ipamd executed as a CNI plugin, exactly as a runtime does it: every command in every
 * supported version, every bad input with its CNI code, idempotency, exhaustion, static
 * addresses, GC and STATUS, and an unreachable or hung daemon.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SUPPORTED_VERSIONS } from "../../src/cni/spec.ts";
import { attachmentEnv, cleanup, type Daemon, DIST_DIR, netconf, runPlugin, startDaemon, tempDir } from "./harness.ts";

let daemon: Daemon;
beforeAll(async () => {
  daemon = await startDaemon();
}, 30_000); // startDaemon waits up to 10 s for the first answer
afterAll(cleanup);

let unique = 0;
const newId = () => `ctr-${process.pid}-${unique++}`;
/** Each test gets its own network name so pools never interfere. */
const conf = (ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, version = "1.0.0") => ({
  ...netconf(daemon.socket, ipam, extra, version),
  name: `net-${unique++}`,
});

function expectCniError(run: Awaited<ReturnType<typeof runPlugin>>, code: number, msgPart?: string): void {
  expect(run.exitCode).not.toBe(0);
  expect(run.json?.code).toBe(code);
  expect(typeof run.json.msg).toBe("string");
  expect(typeof run.json.cniVersion).toBe("string");
  if (msgPart) expect(run.json.msg).toContain(msgPart);
  expect(run.json.msg).not.toContain("\n");
  // A failure is also one line on stderr, for the runtime's log.
  expect(run.stderr).toMatch(new RegExp(`^ipamd [A-Z]+: error ${code}: .+\n$`));
  expect(run.stdout + run.stderr).not.toMatch(/\n\s+at .*\(|\.ts:\d+/); // never a stack trace
}

describe("every command in every supported version", () => {
  for (const version of SUPPORTED_VERSIONS) {
    test(`cniVersion ${version}`, async () => {
      const c = conf({ ranges: [[{ subnet: "10.40.0.0/24" }], [{ subnet: "fd40::/64" }]], routes: [{ dst: "0.0.0.0/0" }] }, {}, version);
      const id = newId();
      const added = await runPlugin(attachmentEnv("ADD", id), c);
      expect(added.exitCode).toBe(0);
      expect(added.stderr).toBe(""); // success logs nothing
      const legacy = version.startsWith("0.");
      expect(added.json).toEqual({
        cniVersion: version,
        ips: [
          { ...(legacy ? { version: "4" } : {}), address: "10.40.0.2/24", gateway: "10.40.0.1" },
          { ...(legacy ? { version: "6" } : {}), address: "fd40::2/64", gateway: "fd40::1" },
        ],
        routes: [{ dst: "0.0.0.0/0" }],
        dns: {},
      });

      const check = await runPlugin(attachmentEnv("CHECK", id), { ...c, prevResult: added.json });
      if (version < "0.4.0") expectCniError(check, 1, "does not allow CHECK");
      else expect(check.exitCode).toBe(0);

      const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: DIST_DIR }, { ...c, "cni.dev/valid-attachments": [{ containerID: id, ifname: "eth0" }] });
      const status = await runPlugin({ CNI_COMMAND: "STATUS", CNI_PATH: DIST_DIR }, c);
      if (version === "1.1.0") {
        expect(gc.exitCode).toBe(0);
        expect(status.exitCode).toBe(0);
        expect(status.stdout).toBe("");
      } else {
        expectCniError(gc, 1, "does not allow GC");
        expectCniError(status, 1, "does not allow STATUS");
      }

      const version_ = await runPlugin({ CNI_COMMAND: "VERSION" }, { cniVersion: version });
      expect(version_.json).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });

      const del = await runPlugin(attachmentEnv("DEL", id), c);
      expect(del.exitCode).toBe(0);
      expect(del.stdout).toBe("");
      if (version >= "0.4.0") expectCniError(await runPlugin(attachmentEnv("CHECK", id), { ...c, prevResult: added.json }), 3);
    }, 30_000);
  }
});

describe("host-local behaviour", () => {
  test("ADD is idempotent by (network, container, ifname); another ifname gets its own address", async () => {
    const c = conf();
    const id = newId();
    const first = await runPlugin(attachmentEnv("ADD", id), c);
    const again = await runPlugin(attachmentEnv("ADD", id), c);
    expect(again.json).toEqual(first.json);
    const second = await runPlugin(attachmentEnv("ADD", id, "net1"), c);
    expect(second.json.ips[0].address).toBe("10.20.0.3/24");
  }, 30_000);

  test("DEL of an unknown attachment succeeds", async () => {
    expect((await runPlugin(attachmentEnv("DEL", newId()), conf())).exitCode).toBe(0);
  }, 30_000);

  test("host-local's older single-range form, resolvConf → dns, dataDir ignored", async () => {
    const dir = tempDir();
    const resolv = join(dir, "resolv.conf");
    writeFileSync(resolv, "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n");
    const c = conf({ ranges: undefined, subnet: "10.41.0.0/24", rangeStart: "10.41.0.100", rangeEnd: "10.41.0.101", gateway: "10.41.0.254", resolvConf: resolv, dataDir: "/var/lib/cni/networks" });
    const added = await runPlugin(attachmentEnv("ADD", newId()), c);
    expect(added.json.ips).toEqual([{ address: "10.41.0.100/24", gateway: "10.41.0.254" }]);
    expect(added.json.dns).toEqual({ nameservers: ["10.96.0.10"], search: ["default.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] });
  }, 30_000);

  test("exhaustion: a clear error naming the pool and its size; a DEL frees an address for the next ADD", async () => {
    const c = conf({ ranges: [[{ subnet: "10.42.0.0/30" }]] }); // only .2 is left after .1 (gateway) and .3 (broadcast)
    const holder = newId();
    expect((await runPlugin(attachmentEnv("ADD", holder), c)).json.ips[0].address).toBe("10.42.0.2/30");
    const full = await runPlugin(attachmentEnv("ADD", newId()), c);
    expectCniError(full, 100, "10.42.0.0/30");
    expect(full.json.msg).toContain("all 1 addresses are in use");
    await runPlugin(attachmentEnv("DEL", holder), c);
    expect((await runPlugin(attachmentEnv("ADD", newId()), c)).json.ips[0].address).toBe("10.42.0.2/30");
  }, 30_000);

  test("a released address is not reused at once: the next ADD continues after the last", async () => {
    const c = conf();
    const a = newId();
    await runPlugin(attachmentEnv("ADD", a), c);
    await runPlugin(attachmentEnv("ADD", newId()), c);
    await runPlugin(attachmentEnv("DEL", a), c);
    expect((await runPlugin(attachmentEnv("ADD", newId()), c)).json.ips[0].address).toBe("10.20.0.4/24");
  }, 30_000);

  test("dual-stack is all or nothing: when IPv4 is exhausted the IPv6 address is not kept", async () => {
    const c = conf({ ranges: [[{ subnet: "fd43::/120" }], [{ subnet: "10.43.0.0/30" }]] });
    await runPlugin(attachmentEnv("ADD", newId()), c);
    const failed = await runPlugin(attachmentEnv("ADD", newId()), c);
    expectCniError(failed, 100);
    // Had fd43::3 been kept, the next would be fd43::4.
    const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: DIST_DIR }, { ...c, cniVersion: "1.1.0", "cni.dev/valid-attachments": [] });
    expect(gc.exitCode).toBe(0);
    expect((await runPlugin(attachmentEnv("ADD", newId()), c)).json.ips[0].address).toBe("fd43::3/120");
  }, 30_000);
});

describe("static addresses", () => {
  test("CNI_ARGS IP= (with IgnoreUnknown and pod args), args.cni.ips and runtimeConfig.ips", async () => {
    const c = conf({ ranges: [[{ subnet: "10.44.0.0/24" }], [{ subnet: "fd44::/64" }]] });
    const viaArgs = await runPlugin(attachmentEnv("ADD", newId(), "eth0", { CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=10.44.0.50,fd44::50" }), c);
    expect(viaArgs.json.ips.map((ip: any) => ip.address)).toEqual(["10.44.0.50/24", "fd44::50/64"]);
    const viaCniArgs = await runPlugin(attachmentEnv("ADD", newId()), { ...c, args: { cni: { ips: ["10.44.0.60"] } } });
    expect(viaCniArgs.json.ips[0].address).toBe("10.44.0.60/24");
    const viaRuntime = await runPlugin(attachmentEnv("ADD", newId()), { ...c, runtimeConfig: { ips: ["10.44.0.70/24"] } });
    expect(viaRuntime.json.ips[0].address).toBe("10.44.0.70/24");
  }, 30_000);

  test("a static address held by another attachment is refused with a clear error", async () => {
    const c = conf();
    await runPlugin(attachmentEnv("ADD", newId(), "eth0", { CNI_ARGS: "IP=10.20.0.9" }), c);
    const clash = await runPlugin(attachmentEnv("ADD", newId(), "eth0", { CNI_ARGS: "IP=10.20.0.9" }), c);
    expectCniError(clash, 101, "10.20.0.9 is already allocated");
    expectCniError(await runPlugin(attachmentEnv("ADD", newId(), "eth0", { CNI_ARGS: "IP=10.99.9.9" }), c), 102, "not in any range");
    expectCniError(await runPlugin(attachmentEnv("ADD", newId(), "eth0", { CNI_ARGS: "IP=banana" }), c), 7, "banana");
  }, 30_000);
});

describe("GC", () => {
  test("releases what is not in cni.dev/valid-attachments (or the older cni.dev/attachments); no key means nothing", async () => {
    const c = { ...conf(), cniVersion: "1.1.0" };
    const keep = newId();
    const stale = newId();
    await runPlugin(attachmentEnv("ADD", keep), c);
    await runPlugin(attachmentEnv("ADD", stale), c);
    const gcEnv = { CNI_COMMAND: "GC", CNI_PATH: DIST_DIR };
    expect((await runPlugin(gcEnv, c)).exitCode).toBe(0);
    expect((await runPlugin(attachmentEnv("CHECK", stale), { ...c, prevResult: { ips: [{ address: "10.20.0.3/24" }] } })).exitCode).toBe(0);
    expect((await runPlugin(gcEnv, { ...c, "cni.dev/attachments": [{ containerID: keep, ifname: "eth0" }] })).exitCode).toBe(0);
    expectCniError(await runPlugin(attachmentEnv("CHECK", stale), { ...c, prevResult: { ips: [{ address: "10.20.0.3/24" }] } }), 3);
    expect((await runPlugin(attachmentEnv("CHECK", keep), { ...c, prevResult: { ips: [{ address: "10.20.0.2/24" }] } })).exitCode).toBe(0);
    expect((await runPlugin(gcEnv, { ...c, "cni.dev/valid-attachments": [] })).exitCode).toBe(0);
    expectCniError(await runPlugin(attachmentEnv("CHECK", keep), { ...c, prevResult: { ips: [{ address: "10.20.0.2/24" }] } }), 3);
  }, 30_000);

  test("CHECK fails when prevResult lacks the allocated address", async () => {
    const c = conf();
    const id = newId();
    await runPlugin(attachmentEnv("ADD", id), c);
    expectCniError(await runPlugin(attachmentEnv("CHECK", id), { ...c, prevResult: { ips: [{ address: "10.20.0.77/24" }] } }), 7, "10.20.0.2");
  }, 30_000);
});

describe("bad input: a CNI error object with the spec's code, never a crash", () => {
  const add = (stdin: string | object, env: Record<string, string | undefined> = {}) => runPlugin({ ...attachmentEnv("ADD", newId()), ...env }, stdin);

  test("unsupported cniVersion → 1", async () => {
    const run = await add(conf({}, {}, "0.2.0"));
    expectCniError(run, 1, "incompatible CNI versions");
    expect(run.json.details).toContain("0.2.0");
  }, 30_000);
  test("missing CNI_* variables → 4", async () => {
    expectCniError(await add(conf(), { CNI_NETNS: undefined }), 4, "CNI_NETNS");
    expectCniError(await add(conf(), { CNI_CONTAINERID: undefined, CNI_PATH: undefined }), 4, "CNI_CONTAINERID,CNI_PATH");
    expectCniError(await runPlugin({ CNI_COMMAND: "GC" }, conf()), 4, "CNI_PATH");
  }, 30_000);
  test("interface name over 15 bytes → 4", async () => expectCniError(await add(conf(), { CNI_IFNAME: "a-very-long-ifname" }), 4, "longer than 15 bytes"));
  test("invalid container ID → 4", async () => expectCniError(await add(conf(), { CNI_CONTAINERID: "../etc" }), 4, "CNI_CONTAINERID"));
  test("unknown CNI_COMMAND → 4", async () => expectCniError(await runPlugin({ CNI_COMMAND: "FROB" }, conf()), 4, "unknown CNI_COMMAND: FROB"));
  test("stdin is not JSON → 6", async () => expectCniError(await add('{"cniVersion": "1.0.0",'), 6, "not valid JSON"));
  test("empty stdin → 6", async () => expectCniError(await add(""), 6));
  test("stdin over 1 MiB → 6", async () => expectCniError(await add(`{"pad":"${"x".repeat(1 << 20)}"}`), 6, "over 1048576 bytes"));
  test("netconf of the wrong shape → 7 naming the field", async () => {
    expectCniError(await add({ cniVersion: "1.0.0", name: "x" }), 7, "ipam");
    expectCniError(await add(conf({ ranges: "10.0.0.0/24" })), 7, "ipam.ranges");
  }, 30_000);
  test("a network name that is not libcni's form → 7", async () => expectCniError(await add({ ...conf(), name: "a/b" }), 7, "network name"));
  test("no ranges → 7", async () => expectCniError(await add(conf({ ranges: undefined })), 7, "no IP ranges"));
  test("bad CIDR → 7", async () => expectCniError(await add(conf({ ranges: [[{ subnet: "10.0.0.0/40" }]] })), 7, "invalid subnet"));
  test("rangeStart outside its subnet → 7", async () =>
    expectCniError(await add(conf({ ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.1" }]] })), 7, "rangeStart 10.0.1.1 not in network 10.0.0.0/24"));
  test("overlapping ranges → 7", async () =>
    expectCniError(await add(conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.128/25" }]] })), 7, "overlaps"));
  test("invalid CNI_ARGS → 4", async () => expectCniError(await add(conf(), { CNI_ARGS: "garbage" }), 4, "CNI_ARGS"));
});

describe("daemon unreachable or not answering → 11 within 3 s", () => {
  test("no daemon on the socket: ADD and DEL fail with 11 (never a false DEL success); STATUS says 50", async () => {
    const c: Record<string, any> = { ...netconf(join(tempDir(), "absent.sock")), cniVersion: "1.1.0" };
    for (const command of ["ADD", "DEL"]) {
      const started = performance.now();
      expectCniError(await runPlugin(attachmentEnv(command, newId()), c), 11, "not reachable");
      expect({ command, withinSpec: performance.now() - started < 3000 }).toEqual({ command, withinSpec: true });
    }
    expectCniError(await runPlugin({ CNI_COMMAND: "STATUS", CNI_PATH: DIST_DIR }, c), 50, "not available");
    // A bad netconf is still code 7 with the daemon down: the plugin validates before calling.
    expectCniError(await runPlugin(attachmentEnv("ADD", newId()), { ...c, ipam: { ...c.ipam, ranges: [[{ subnet: "nope" }]] } }), 7);
  }, 30_000);

  test("a hung daemon (SIGSTOP): ADD fails with 11 after the timeout, and the daemon serves again once resumed", async () => {
    const hung = await startDaemon();
    const c = netconf(hung.socket);
    hung.proc.kill("SIGSTOP");
    try {
      const started = performance.now();
      const run = await runPlugin(attachmentEnv("ADD", newId()), c);
      const elapsed = performance.now() - started;
      expectCniError(run, 11, "did not answer");
      // It waited for its 2.5 s timeout, and answered within the 3 s the README promises.
      expect({ waited: elapsed >= 2500, withinSpec: elapsed < 3000 }).toEqual({ waited: true, withinSpec: true });
    } finally {
      hung.proc.kill("SIGCONT");
    }
    expect((await runPlugin(attachmentEnv("ADD", newId()), c)).exitCode).toBe(0);
  }, 30_000);
});
