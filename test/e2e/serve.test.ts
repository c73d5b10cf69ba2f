/** The daemon's lifecycle as systemd or a DaemonSet sees it: socket, single instance, SIGTERM, config. */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import { startEtcd } from "../store/etcd-cluster.ts";
import { blockAllocations, ETCD_NAMESPACE, etcdObjects } from "./shared-stores.ts";
import { attachmentEnv, BINARY, cleanup, netconf, onCleanup, runPlugin, startDaemon, startDaemonWithAdmin, tempDir, waitFor } from "./harness.ts";
import { accepts, holdRequest } from "./held-request.ts";

afterEach(cleanup);

async function run(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BINARY, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

const addBody = (containerID: string) =>
  JSON.stringify({ network: "lifecycle", containerID, ifname: "eth0", ranges: [[{ subnet: "10.50.0.0/16" }]] });

describe("ipamd serve", () => {
  test("creates its socket directory 0700 and the socket 0600", async () => {
    const dir = tempDir();
    const socket = join(dir, "run", "ipamd", "ipamd.sock");
    const proc = Bun.spawn([BINARY, "serve", "--socket", socket, "--db", join(dir, "db", "ipamd.db")], { stderr: "pipe" });
    try {
      await waitFor(() => existsSync(socket), 10_000, "the socket to appear");
      expect(statSync(join(dir, "run", "ipamd")).mode & 0o777).toBe(0o700);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      expect(statSync(socket).isSocket()).toBe(true);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 30_000);

  test("refuses to start when another daemon serves the same socket; the first keeps serving", async () => {
    const first = await startDaemon();
    const second = await run(["serve", "--socket", first.socket, "--db", join(tempDir(), "other.db")]);
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toContain(`another ipamd is already serving ${first.socket}`);
    expect((await fetch("http://ipamd/v1/status", { unix: first.socket })).status).toBe(200);
  }, 30_000);

  test("refuses a second daemon on the same database", async () => {
    const first = await startDaemon();
    const second = await run(["serve", "--socket", join(tempDir(), "s.sock"), "--db", first.db]);
    expect(second.exitCode).not.toBe(0);
    expect(second.stderr).toContain(`cannot open store ${first.db}`);
  }, 30_000);

  test("a file that is not a socket at the socket path is refused and left as it was", async () => {
    const dir = tempDir();
    const path = join(dir, "ipamd.sock");
    writeFileSync(path, "not a socket\n");
    const proc = Bun.spawn([BINARY, "serve", "--socket", path, "--db", join(dir, "d.db")], { stderr: "pipe" });
    onCleanup(() => void proc.kill("SIGKILL"));
    const exit = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running after 10 s")]);
    proc.kill("SIGKILL");
    const stderr = (await new Response(proc.stderr).text()).trim();
    expect({ exit, stderr }).toEqual({ exit: 1, stderr: `ipamd serve: ${path} exists and is not a socket; refusing to replace it` });
    expect({ isFile: statSync(path).isFile(), text: readFileSync(path, "utf8") }).toEqual({ isFile: true, text: "not a socket\n" });
  }, 30_000);

  test("removes a stale socket left by a crash and starts", async () => {
    const first = await startDaemon();
    await first.kill9();
    expect(existsSync(first.socket)).toBe(true);
    const again = await startDaemon({ dir: first.dir });
    expect((await fetch("http://ipamd/v1/status", { unix: again.socket })).status).toBe(200);
  }, 30_000);

  test("SIGTERM: every request in flight is answered and durable; new ones get code 11; then the socket is removed", async () => {
    const daemon = await startDaemon();
    // 16 ADDs inside the daemon's handler (it said 100 Continue), each waiting for its last byte.
    const held = await Promise.all(Array.from({ length: 16 }, (_, i) => holdRequest(daemon.socket, "/v1/cni/add", addBody(`c${i}`))));
    await Promise.all(held.map((h) => h.reached));
    daemon.proc.kill("SIGTERM");
    await waitFor(async () => !(await accepts(daemon.socket)), 10_000, "the daemon to stop accepting connections after SIGTERM");
    // A plugin arriving now is told to try again later, as the README promises.
    const late = await runPlugin(attachmentEnv("ADD", "late"), netconf(daemon.socket, { ranges: [[{ subnet: "10.50.0.0/16" }]] }));
    expect({ exit: late.exitCode, code: late.json?.code }).toEqual({ exit: 1, code: 11 });
    const answers = await Promise.all(held.map((h) => h.finish()));
    expect(answers.map((a, i) => `c${i}: ${a.status} ${a.error ?? ""}`.trim())).toEqual(held.map((_, i) => `c${i}: 200`));
    expect(await daemon.proc.exited).toBe(0);
    expect(existsSync(daemon.socket)).toBe(false);
    const restarted = await startDaemon({ dir: daemon.dir });
    for (const [i, a] of answers.entries()) {
      const res = await fetch("http://ipamd/v1/cni/add", { unix: restarted.socket, method: "POST", body: addBody(`c${i}`) });
      expect(((await res.json()) as any).ips).toEqual(a.body.ips);
    }
    expect(((await (await fetch("http://ipamd/v1/status", { unix: restarted.socket })).json()) as any).allocations).toBe(16);
  }, 60_000);

  test("SIGTERM with the admin listener: requests in flight on both listeners are answered; then neither accepts", async () => {
    const daemon = await startDaemonWithAdmin();
    const admin = { hostname: "127.0.0.1", port: daemon.port };
    const onSocket = await Promise.all(Array.from({ length: 4 }, (_, i) => holdRequest(daemon.socket, "/v1/cni/add", addBody(`s${i}`))));
    const onAdmin = await Promise.all(Array.from({ length: 4 }, () => holdRequest(admin, "/v1/gc", JSON.stringify({ dryRun: true }))));
    await Promise.all([...onSocket, ...onAdmin].map((h) => h.reached));
    daemon.proc.kill("SIGTERM");
    await waitFor(async () => !(await accepts(daemon.socket)) || !(await accepts(admin)), 10_000, "a listener to stop accepting after SIGTERM");
    const answers = await Promise.all([...onSocket, ...onAdmin].map((h) => h.finish()));
    expect(answers.map((a) => `${a.status} ${a.error ?? ""}`.trim())).toEqual(answers.map(() => "200"));
    expect(answers.slice(4).map((a) => a.body)).toEqual(answers.slice(4).map(() => ({ reclaimed: [], pending: 0, dryRun: true })));
    expect(await daemon.proc.exited).toBe(0);
    expect({ socket: await accepts(daemon.socket), admin: await accepts(admin), file: existsSync(daemon.socket) }).toEqual({ socket: false, admin: false, file: false });
  }, 60_000);

  test("SIGTERM the moment the socket takes a request, start-up not yet done (etcd's first health check): the request is answered", async () => {
    const etcd = await startEtcd();
    // Five starts: the window is a round trip to etcd, and a daemon that dies in it does so in most starts.
    for (let round = 0; round < 5; round++) {
      const dir = tempDir();
      const socket = join(dir, "ipamd.sock");
      const proc = Bun.spawn([BINARY, "serve", "--socket", socket, "--db", join(dir, "ipamd.db"), "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", `/early-${process.pid}-${round}/`], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      onCleanup(async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
        await proc.exited;
      });
      let held: Awaited<ReturnType<typeof holdRequest>> | undefined;
      const deadline = Date.now() + 10_000;
      while (!held && Date.now() < deadline) {
        if (existsSync(socket)) held = await holdRequest(socket, "/v1/cni/add", addBody(`early-${round}`)).catch(() => undefined);
        if (!held) await Bun.sleep(0);
      }
      if (!held) throw new Error(`the daemon's socket took no request within 10 s: ${await new Response(proc.stderr).text()}`);
      await held.reached;
      proc.kill("SIGTERM");
      const answer = await held.finish();
      expect({ round, answer: `${answer.status} ${answer.error ?? ""}`.trim(), exit: await proc.exited }).toEqual({ round, answer: "200", exit: 0 });
    }
  }, 60_000);

  test("SIGTERM with the etcd store: requests in flight are answered and in etcd, then the socket is removed", async () => {
    const etcd = await startEtcd();
    const prefix = `/serve-${process.pid}/`;
    const daemon = await startDaemon({ args: ["--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", prefix] });
    const held = await Promise.all(Array.from({ length: 8 }, (_, i) => holdRequest(daemon.socket, "/v1/cni/add", addBody(`e${i}`))));
    await Promise.all(held.map((h) => h.reached));
    daemon.proc.kill("SIGTERM");
    await waitFor(async () => !(await accepts(daemon.socket)), 10_000, "the daemon to stop accepting connections after SIGTERM");
    const answers = await Promise.all(held.map((h) => h.finish()));
    expect(answers.map((a) => `${a.status} ${a.error ?? ""}`.trim())).toEqual(held.map(() => "200"));
    expect(await daemon.proc.exited).toBe(0);
    expect(existsSync(daemon.socket)).toBe(false);
    const stored = await blockAllocations(etcdObjects(new EtcdClient(etcd.endpoints), prefix), ETCD_NAMESPACE);
    expect(stored.map((r) => `${r.containerID} ${r.ip}`).sort()).toEqual(answers.map((a, i) => `e${i} ${a.body.ips[0].address.split("/")[0]}`).sort());
  }, 60_000);

  test("a config file sets the node name; an invalid one stops the daemon naming the field", async () => {
    const dir = tempDir();
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify({ node: "node-7" }));
    const daemon = await startDaemon({ args: ["--config", good] });
    expect(daemon.stderr()).toContain('"node":"node-7"');

    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ node: "", sokcet: "/x" }));
    const refused = await run(["serve", "--config", bad, "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db")]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/config file .*bad\.json: (node|sokcet): /);
    const missing = await run(["serve", "--config", join(dir, "absent.json"), "--socket", join(dir, "s.sock")]);
    expect(missing.stderr).toContain("does not exist");
  }, 30_000);
});

describe("CLI", () => {
  test("version, --help, status, unknown command", async () => {
    const pkg = await Bun.file(join(import.meta.dir, "../../package.json")).json();
    expect((await run(["version"])).stdout.trim()).toBe(`ipamd ${pkg.version}`);
    const help = await run(["--help"]);
    expect(help.exitCode).toBe(0);
    for (const verb of ["serve", "status", "version"]) expect(help.stdout).toContain(`ipamd ${verb}`);
    const daemon = await startDaemon();
    const status = await run(["status", "--socket", daemon.socket]);
    expect(status).toMatchObject({ exitCode: 0, stdout: expect.stringContaining("serving, 0 allocations") });
    const down = await run(["status", "--socket", join(tempDir(), "none.sock")]);
    expect(down.exitCode).toBe(1);
    expect(down.stderr).toContain("not reachable");
    const unknown = await run(["frobnicate"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect((await run(["serve", "--bogus"])).exitCode).not.toBe(0);
  }, 30_000);
});
