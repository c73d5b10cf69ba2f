/**
 * Operating ipamd end to end: every admin verb against a running daemon, leak reclamation
 * of a real network namespace, migration from a real host-local data dir written by
 * Debian's host-local, and the /metrics output checked by promtool.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, BINARY, cleanup, type Daemon, DIST_DIR, netconf, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";
import { addNetns, mustRun, requireRootAndTools, run } from "./netns.ts";

afterEach(cleanup);

async function cli(daemon: Daemon, ...args: string[]) {
  return run([BINARY, ...args, "--socket", daemon.socket]);
}

const podArgs = (ns: string, name: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_UID=uid-${name}`;

describe("admin CLI", () => {
  test("pools, allocations, show (by IP, container and pod), release, gc, reload: tables and --json", async () => {
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ pools: { v4: { addresses: ["10.90.0.0/24"], prefix: 24, gateway: "10.90.0.1" } } }));
    const daemon = await startDaemon({ dir, args: ["--config", config] });
    const conf = netconf(daemon.socket, { ranges: undefined, pool: "v4" });
    await runPlugin(attachmentEnv("ADD", "aaaa1111", "eth0", { CNI_ARGS: podArgs("default", "web-0") }), conf);
    await runPlugin(attachmentEnv("ADD", "bbbb2222", "eth0", { CNI_ARGS: podArgs("prod", "api-0") }), conf);

    const pools = await cli(daemon, "pools");
    expect(pools.exitCode).toBe(0);
    expect(pools.stdout).toMatch(/^POOL\s+KIND\s+SPACE\s+SIZE\s+USED\s+FREE\s+USE%/m);
    expect(pools.stdout).toMatch(/^v4\s+named\s+default\s+253\s+2\s+251\s+0\.8%/m);
    expect(JSON.parse((await cli(daemon, "pools", "--json")).stdout).pools[0]).toMatchObject({ name: "v4", used: 2 });

    const all = await cli(daemon, "allocations");
    expect(all.stdout.split("\n")[0]).toMatch(/^IP\s+NETWORK\s+POOL\s+CONTAINER\s+IFNAME\s+POD\s+NODE\s+AGE$/);
    expect(all.stdout).toMatch(/^10\.90\.0\.2\/24\s+testnet\s+v4\s+aaaa1111\s+eth0\s+default\/web-0\s/m);
    const byPod = JSON.parse((await cli(daemon, "allocations", "--pod", "prod/api-0", "--json")).stdout);
    expect(byPod.allocations.map((a: any) => a.ip)).toEqual(["10.90.0.3"]);

    const byIp = await cli(daemon, "show", "10.90.0.2");
    expect(byIp.stdout).toContain("default/web-0");
    expect(byIp.stdout).toMatch(/History \(newest first\):\nTIME\s+EVENT/);
    expect(byIp.stdout).toMatch(/\sallocated\s+10\.90\.0\.2\s+aaaa1111/);
    expect(JSON.parse((await cli(daemon, "show", "bbbb2222", "--json")).stdout).holders[0].ip).toBe("10.90.0.3");
    expect(JSON.parse((await cli(daemon, "show", "prod/api-0", "--json")).stdout).history[0].kind).toBe("allocated");

    const refused = await cli(daemon, "release", "10.90.0.2");
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("without --yes");
    const released = await cli(daemon, "release", "10.90.0.2", "--yes");
    expect(released.stdout).toContain("released 10.90.0.2 from aaaa1111/eth0");
    expect((await cli(daemon, "show", "10.90.0.2")).stdout).toContain("held by nobody now");
    expect((await cli(daemon, "release", "10.90.0.2", "--yes")).stderr).toMatch(/not allocated/);

    const gc = await cli(daemon, "gc", "--dry-run");
    expect(gc.stdout).toMatch(/would reclaim 0 addresses; 1 more wait/);

    writeFileSync(config, JSON.stringify({ pools: { v4: { addresses: ["10.90.0.0/24"], prefix: 24, gateway: "10.90.0.1" }, v6: { addresses: ["fd90::/64"], prefix: 64 } } }));
    expect((await cli(daemon, "reload")).stdout).toContain("reloaded: 2 pools (v4, v6)");

    // Errors are one line and a non-zero exit.
    const bad = await cli(daemon, "show", "a/b/c");
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    const down = await run([BINARY, "pools", "--socket", join(dir, "nope.sock")]);
    expect(down.exitCode).toBe(1);
    expect(down.stderr).toContain("not reachable");
  }, 60_000);
});

describe("leak reclamation with real network namespaces", () => {
  test("an address whose netns was deleted is reclaimed after the grace period; one whose netns lives is kept", async () => {
    requireRootAndTools(["ip"]);
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ reclaimInterval: 0.2, reclaimGrace: 1 }));
    const daemon = await startDaemon({ dir, args: ["--config", config] });
    const alive = `ipamd-live-${process.pid}`;
    const doomed = `ipamd-dead-${process.pid}`;
    await addNetns(alive);
    await addNetns(doomed);
    const conf = netconf(daemon.socket);
    const env = (id: string, ns: string) => ({ ...attachmentEnv("ADD", id), CNI_NETNS: `/var/run/netns/${ns}` });
    expect((await runPlugin(env("alive", alive), conf)).exitCode).toBe(0);
    expect((await runPlugin(env("doomed", doomed), conf)).exitCode).toBe(0);
    await mustRun(["ip", "netns", "del", doomed]);
    await waitFor(async () => !(await cli(daemon, "show", "doomed")).stdout.includes("10.20.0.3/24"), 15_000, "the leaked address to be reclaimed");
    const shown = JSON.parse((await cli(daemon, "show", "10.20.0.3", "--json")).stdout);
    expect(shown.holders).toEqual([]);
    expect(shown.history[0]).toMatchObject({ kind: "reclaimed", containerID: "doomed" });
    expect(shown.history[0].cause).toContain(`netns /var/run/netns/${doomed} missing`);
    expect(daemon.stderr()).toContain("reclaimed 10.20.0.3");
    // The live one is never touched, however many sweeps pass: a second leak, made now, takes
    // at least the 1 s grace (five 0.2 s sweeps) to be reclaimed, and the live one outlasts it.
    const later = `ipamd-dead2-${process.pid}`;
    await addNetns(later);
    expect((await runPlugin(env("later", later), conf)).exitCode).toBe(0);
    await mustRun(["ip", "netns", "del", later]);
    const held = async () => JSON.parse((await cli(daemon, "allocations", "--json")).stdout).allocations.map((a: any) => a.containerID).sort();
    expect(await held()).toEqual(["alive", "later"]);
    await waitFor(async () => !(await held()).includes("later"), 15_000, "the second leak to be reclaimed");
    expect(await held()).toEqual(["alive"]);
  }, 60_000);
});

describe("migration from host-local", () => {
  test("imports a data dir written by Debian's host-local: idempotent, and new ADDs never collide", async () => {
    requireRootAndTools(["/usr/lib/cni/host-local"]);
    const dir = tempDir();
    const dataDir = join(dir, "cni");
    const hostLocalConf = { cniVersion: "1.0.0", name: "migr", type: "host-local", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.91.0.0/24" }]] } };
    for (const id of ["hl-a", "hl-b", "hl-c"]) {
      const r = await runPlugin({ ...attachmentEnv("ADD", id), CNI_PATH: "/usr/lib/cni" }, hostLocalConf, "/usr/lib/cni/host-local");
      expect(r.exitCode).toBe(0);
    }
    await runPlugin({ ...attachmentEnv("DEL", "hl-b"), CNI_PATH: "/usr/lib/cni" }, hostLocalConf, "/usr/lib/cni/host-local");
    const confFile = join(dir, "10-migr.conf");
    writeFileSync(confFile, JSON.stringify({ ...hostLocalConf, ipam: { ...hostLocalConf.ipam, type: "ipamd" } }));

    const daemon = await startDaemon();
    const first = await cli(daemon, "import", "host-local", join(dataDir, "migr"), "--conf", confFile);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain("network migr: 2 imported, 0 already there, 0 conflicts");
    expect((await cli(daemon, "import", "host-local", join(dataDir, "migr"), "--conf", confFile)).stdout).toContain("0 imported, 2 already there");

    const imported = JSON.parse((await cli(daemon, "allocations", "--json")).stdout).allocations;
    expect(imported.map((a: any) => [a.ip, a.containerID, a.prefix, a.gateway])).toEqual([
      ["10.91.0.2", "hl-a", 24, "10.91.0.1"],
      ["10.91.0.4", "hl-c", 24, "10.91.0.1"],
    ]);
    expect(JSON.parse((await cli(daemon, "show", "10.91.0.2", "--json")).stdout).history[0].kind).toBe("imported");
    // The same netconf, now served by ipamd: the running pods keep theirs, new ones continue after host-local's last.
    const ipamdConf = { ...hostLocalConf, type: "ipamd", ipam: { type: "ipamd", socket: daemon.socket, ranges: hostLocalConf.ipam.ranges } };
    expect((await runPlugin(attachmentEnv("ADD", "hl-a"), ipamdConf)).json.ips[0].address).toBe("10.91.0.2/24");
    expect((await runPlugin(attachmentEnv("ADD", "new-1"), ipamdConf)).json.ips[0].address).toBe("10.91.0.5/24");
    // An address held by another container in ipamd is a conflict, reported, not overwritten.
    const clash = join(dir, "clash");
    await mustRun(["mkdir", "-p", clash]);
    writeFileSync(join(clash, "10.91.0.5"), "someone-else\r\neth0");
    const conflict = await cli(daemon, "import", "host-local", clash, "--network", "migr");
    expect(conflict.exitCode).toBe(1);
    expect(conflict.stdout).toMatch(/10\.91\.0\.5\s+someone-else\s+new-1\/eth0/);
  }, 60_000);
});

describe("metrics", () => {
  test("promtool check metrics passes on /metrics of a daemon that has served requests", async () => {
    requireRootAndTools(["promtool"]);
    const daemon = await startDaemon();
    const conf = netconf(daemon.socket);
    await runPlugin(attachmentEnv("ADD", "m1"), conf);
    await runPlugin(attachmentEnv("DEL", "m1"), conf);
    await runPlugin(attachmentEnv("ADD", "m2"), { ...conf, ipam: { type: "ipamd", socket: daemon.socket, ranges: [[{ subnet: "bad" }, { subnet: "x" }]] } });
    await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: DIST_DIR }, { ...conf, cniVersion: "1.1.0", "cni.dev/valid-attachments": [] });
    const text = await (await fetch("http://ipamd/metrics", { unix: daemon.socket })).text();
    expect(text).toContain("ipamd_allocations_total");
    expect(text).toContain("ipamd_store_commit_duration_seconds_bucket");
    const check = await run(["promtool", "check", "metrics"], text);
    expect(check.stderr + check.stdout).toBe("");
    expect(check.exitCode).toBe(0);
  }, 60_000);
});
