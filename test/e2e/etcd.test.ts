/**
 * Cluster-wide allocation on a real 3-member etcd cluster (Debian's etcd-server on loopback,
 * TLS certificates made by the test), with three daemons of different node names sharing it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { EtcdClient } from "../../src/store/etcd-client.ts";
import type { AllocationRecord } from "../../src/store/store.ts";
import { type EtcdCluster, startEtcd } from "../store/etcd-cluster.ts";
import { attachmentEnv, BINARY, cleanup, type Daemon, netconf, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";
import { streamUntilKilled } from "./kill-stream.ts";

let etcd: EtcdCluster;
let client: EtcdClient;
let prefixN = 0;

beforeAll(async () => {
  etcd = await startEtcd({ members: 3, tls: true });
  const c = etcd.certs!;
  client = new EtcdClient(etcd.endpoints, { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() }, 3000);
}, 60_000);
afterAll(cleanup);

async function daemons(names: string[], prefix: string, extra: Record<string, unknown> = {}, endpoints = etcd.endpoints): Promise<Daemon[]> {
  const c = etcd.certs!;
  return Promise.all(
    names.map(async (node) => {
      const dir = tempDir();
      const config = join(dir, "config.json");
      writeFileSync(config, JSON.stringify({ etcd: { blockPrefixV4: 28, nodeTTL: 5 }, reclaimInterval: 0, ...extra }));
      return startDaemon({
        dir,
        args: ["--config", config, "--node", node, "--store", "etcd", "--etcd-endpoints", endpoints.join(","), "--etcd-cacert", c.ca, "--etcd-cert", c.clientCert, "--etcd-key", c.clientKey, "--etcd-prefix", prefix],
      });
    }),
  );
}

/** Every allocation in etcd under a prefix: the ground truth for "handed out exactly once". */
async function scan(prefix: string): Promise<AllocationRecord[]> {
  return (await client.rangePrefix(`${prefix}a/`)).map((kv) => JSON.parse(kv.value) as AllocationRecord);
}

const conf = (d: Daemon, subnet = "10.95.0.0/26") => netconf(d.socket, { ranges: [[{ subnet }]] });

/**
 * The etcd members (indexes into etcd.endpoints) a process holds TCP connections to, read with
 * ss, the one it sent to last first. A member it moved away from (a request that timed out on a
 * loaded machine) may keep an idle keep-alive connection: the most recent send tells which
 * member the client is on now.
 */
function membersTalkedTo(pid: number): number[] {
  const ss = Bun.spawnSync(["ss", "-tnpiH", "state", "established"], { stdout: "pipe" }).stdout.toString();
  const lines = ss.split("\n");
  const lastSent = new Map<number, number>();
  lines.forEach((line, i) => {
    if (!line.includes(`pid=${pid},`)) return;
    const port = Number(line.trim().split(/\s+/)[3]?.split(":").pop());
    const ms = Number(/lastsnd:(\d+)/.exec(lines[i + 1] ?? "")?.[1] ?? Infinity);
    lastSent.set(port, Math.min(ms, lastSent.get(port) ?? Infinity));
  });
  const members = etcd.endpoints.flatMap((e, i) => (lastSent.has(Number(new URL(e).port)) ? [i] : []));
  return members.sort((a, b) => lastSent.get(Number(new URL(etcd.endpoints[a]!).port))! - lastSent.get(Number(new URL(etcd.endpoints[b]!).port))!);
}

/** Which member (index into etcd.endpoints) leads the cluster now; waits for there to be one. */
async function leaderIndex(): Promise<number> {
  const c = etcd.certs!;
  const tls = { ca: await Bun.file(c.ca).text(), cert: await Bun.file(c.clientCert).text(), key: await Bun.file(c.clientKey).text() };
  let found = -1;
  await waitFor(async () => {
    for (const [i, e] of etcd.endpoints.entries()) {
      const status = (await fetch(`${e}/v3/maintenance/status`, { method: "POST", body: "{}", tls } as RequestInit).then((r) => r.json()).catch(() => null)) as { leader?: string; header?: { member_id?: string } } | null;
      if (status?.leader && status.leader === status.header?.member_id) found = i;
    }
    return found >= 0;
  }, 10_000);
  return found;
}

describe("one pool shared by three daemons on a 3-member etcd cluster", () => {
  test("concurrent ADDs on all daemons until exhaustion: every address handed out exactly once", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    const ds = await daemons(["node-a", "node-b", "node-c"], prefix);
    // 10.95.0.0/26 minus network, gateway and broadcast: 61 addresses for 90 ADDs.
    // Like a runtime, an ADD answered "try again later" (11: 90 plugin processes, 3 daemons and
    // 3 etcd members share 2 cores here) is retried with the same container ID (idempotent)
    // until it has another answer: how many tries that takes depends on the machine's load.
    const addUntilAnswered = async (d: Daemon, id: string) => {
      let run = await runPlugin(attachmentEnv("ADD", id), conf(d));
      const deadline = Date.now() + 60_000;
      while (run.json?.code === 11 && Date.now() < deadline) run = await runPlugin(attachmentEnv("ADD", id), conf(d));
      return run;
    };
    const runs = await Promise.all(ds.flatMap((d, i) => Array.from({ length: 30 }, (_, j) => addUntilAnswered(d, `n${i}-c${j}`))));
    const ok = runs.filter((r) => r.exitCode === 0);
    const failed = runs.filter((r) => r.exitCode !== 0);
    expect(ok).toHaveLength(61);
    for (const f of failed) expect(`${f.json?.code} ${f.json?.msg}`).toMatch(/^100 /);
    const handedOut = ok.map((r) => r.json.ips[0].address);
    expect(new Set(handedOut).size).toBe(61);
    const stored = await scan(prefix);
    expect(stored).toHaveLength(61);
    expect(new Set(stored.map((r) => r.ip)).size).toBe(61);
    expect(stored.map((r) => `${r.ip}/24`.replace("/24", "/26")).sort()).toEqual([...handedOut].sort());
    // Blocks: the /26 is four /28 blocks, all claimed by compare-and-swap.
    const blocks = await client.rangePrefix(`${prefix}block/`);
    expect(blocks.length).toBe(4);
    // Which node wins which block is a race; each is claimed by exactly one of them.
    for (const b of blocks) expect(["node-a", "node-b", "node-c"]).toContain(b.value);
  }, 120_000);

  test("one member killed: allocation continues; quorum lost: code 11 within 3 s, nothing half-written; quorum back: allocation resumes without a restart", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    const [d] = await daemons(["node-q"], prefix);
    expect((await runPlugin(attachmentEnv("ADD", "before"), conf(d!))).exitCode).toBe(0);
    await etcd.kill(2);
    try {
      const during = await runPlugin(attachmentEnv("ADD", "one-down"), conf(d!));
      expect(during.exitCode).toBe(0);
      await etcd.kill(1);
      const started = performance.now();
      const lost = await runPlugin(attachmentEnv("ADD", "no-quorum"), conf(d!));
      expect(performance.now() - started).toBeLessThan(3000);
      expect(lost.json?.code).toBe(11);
    } finally {
      await etcd.start(1);
      await etcd.start(2);
    }
    // Quorum back: the same daemon allocates again once etcd has elected a leader.
    await waitFor(async () => (await runPlugin(attachmentEnv("ADD", "no-quorum"), conf(d!))).exitCode === 0, 30_000, "ADDs to resume with quorum back");
    const stored = await scan(prefix);
    expect(stored.map((r) => r.containerID).sort()).toEqual(["before", "no-quorum", "one-down"]);
    expect(new Set(stored.map((r) => r.ip)).size).toBe(3);
  }, 120_000);

  test("the member the daemon's etcd client is on is killed: ADDs go on through the others within the plugin's deadline", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    const [d] = await daemons(["node-f"], prefix);
    const add = (id: string) => runPlugin(attachmentEnv("ADD", id), conf(d!, "10.98.0.0/24"));
    expect((await add("f0")).exitCode).toBe(0);
    const on = membersTalkedTo(d!.proc.pid);
    expect(on.length).toBeGreaterThan(0); // the first is the member it is on: the one to kill
    await etcd.kill(on[0]!);
    try {
      // No retries: each ADD must be answered within the plugin's 2.5 s, or it is code 11.
      for (let i = 1; i <= 10; i++) {
        const run = await add(`f${i}`);
        expect({ id: `f${i}`, exit: run.exitCode, out: run.exitCode === 0 ? "" : run.stdout }).toEqual({ id: `f${i}`, exit: 0, out: "" });
      }
      const now = membersTalkedTo(d!.proc.pid);
      expect(now.length).toBeGreaterThan(0);
      expect(now).not.toContain(on[0]!);
    } finally {
      await etcd.start(on[0]!);
    }
    const stored = await scan(prefix);
    expect(stored.map((r) => r.containerID).sort()).toEqual(Array.from({ length: 11 }, (_, i) => `f${i}`).sort());
    expect(new Set(stored.map((r) => r.ip)).size).toBe(11);
  }, 120_000);

  test("the leader killed while the daemon is on it: a write a follower forwarded to it is sent again, within the plugin's deadline", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    const leader = await leaderIndex();
    // The daemon talks to the first endpoint it is given: the leader.
    const [d] = await daemons(["node-l"], prefix, {}, [etcd.endpoints[leader]!, ...etcd.endpoints.filter((_, i) => i !== leader)]);
    const add = (id: string) => runPlugin(attachmentEnv("ADD", id), conf(d!, "10.98.1.0/24"));
    expect((await add("l0")).exitCode).toBe(0);
    await etcd.kill(leader);
    try {
      for (let i = 1; i <= 3; i++) {
        const run = await add(`l${i}`);
        expect({ id: `l${i}`, exit: run.exitCode, out: run.exitCode === 0 ? "" : run.stdout }).toEqual({ id: `l${i}`, exit: 0, out: "" });
      }
    } finally {
      await etcd.start(leader);
    }
    expect((await scan(prefix)).map((r) => r.containerID).sort()).toEqual(["l0", "l1", "l2", "l3"]);
  }, 120_000);

  test("a daemon killed with kill -9 mid-allocation and restarted: acknowledged allocations kept, no duplicates, its blocks still its own", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    let [d] = await daemons(["node-k"], prefix);
    const { acknowledged, failed, queuedAtKill } = await streamUntilKilled(d!, conf(d!, "10.96.0.0/24"), { id: (w, i) => `k${w}-${i}`, workers: 8, killAfter: 10, inFlight: 4 });
    // The kill met both sets: acknowledged ADDs, and ADDs it left unanswered (code 11 each).
    expect(acknowledged.length).toBeGreaterThanOrEqual(10);
    expect(queuedAtKill).toBeGreaterThanOrEqual(4);
    expect(failed.length).toBeGreaterThanOrEqual(queuedAtKill);
    expect(failed.filter((f) => f.run.json?.code !== 11).map((f) => f.run.stdout)).toEqual([]);
    const acked = acknowledged.map((a) => ({ id: a.containerID, ip: a.address }));
    const blocksBefore = (await client.rangePrefix(`${prefix}block/`)).map((b) => `${b.key}=${b.value}`).sort();
    [d] = await daemons(["node-k"], prefix);
    for (const a of acked) expect((await runPlugin(attachmentEnv("ADD", a.id), conf(d!, "10.96.0.0/24"))).json.ips[0].address).toBe(a.ip);
    // The runtime retries what failed: each gets an address (the one committed before the kill, if any).
    const retried = await Promise.all(failed.map((f) => runPlugin(attachmentEnv("ADD", f.containerID), conf(d!, "10.96.0.0/24"))));
    expect(retried.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
    const more = await Promise.all(Array.from({ length: 10 }, (_, i) => runPlugin(attachmentEnv("ADD", `after${i}`), conf(d!, "10.96.0.0/24"))));
    expect(more.every((r) => r.exitCode === 0)).toBe(true);
    const stored = await scan(prefix);
    expect(new Set(stored.map((r) => r.ip)).size).toBe(stored.length);
    const blocksAfter = (await client.rangePrefix(`${prefix}block/`)).map((b) => `${b.key}=${b.value}`).sort();
    for (const b of blocksBefore) expect(blocksAfter).toContain(b);
    expect(blocksAfter.every((b) => b.endsWith("=node-k"))).toBe(true);
  }, 120_000);

  test("blocks of a node that is gone are given up once empty; its live allocations stay visible", async () => {
    const prefix = `/ipamd-${process.pid}-${prefixN++}/`;
    const [gone, stays] = await daemons(["node-gone", "node-stays"], prefix, { etcd: { blockPrefixV4: 28, nodeTTL: 2 } });
    const c = (d: Daemon) => conf(d, "10.97.0.0/24");
    expect((await runPlugin(attachmentEnv("ADD", "g1"), c(gone!))).json.ips[0].address).toBe("10.97.0.2/24");
    // node-gone fills its first block and takes a second one, then its pods go away but one.
    for (let i = 2; i <= 16; i++) expect((await runPlugin(attachmentEnv("ADD", `g${i}`), c(gone!))).exitCode).toBe(0);
    for (let i = 1; i <= 14; i++) await runPlugin(attachmentEnv("DEL", `g${i}`), c(gone!));
    const owned = async () => (await client.rangePrefix(`${prefix}block/`)).filter((b) => b.value === "node-gone").map((b) => decodeURIComponent(b.key.slice(`${prefix}block/testnet/`.length)));
    expect(await owned()).toEqual(["10.97.0.0/28", "10.97.0.16/28"]);
    await gone!.kill9();
    const nodes = async () => (await client.rangePrefix(`${prefix}node/`, { keysOnly: true })).map((kv) => kv.key.slice(`${prefix}node/`.length));
    expect(await nodes()).toContain("node-gone");
    await waitFor(async () => !(await nodes()).includes("node-gone"), 15_000, "node-gone's lease (2 s) to run out");
    const gc = async (...flags: string[]) => JSON.parse(await new Response(Bun.spawn([BINARY, "gc", "--json", ...flags, "--socket", stays!.socket], { stdout: "pipe" }).stdout).text());
    // A dry run gives up nothing: the empty block stays node-gone's.
    expect((await gc("--dry-run")).blocksReleased ?? []).toEqual([]);
    expect(await owned()).toEqual(["10.97.0.0/28", "10.97.0.16/28"]);
    expect((await gc()).blocksReleased).toEqual([`testnet 10.97.0.0/28 (node node-gone)`]);
    // The block still holding g15 and g16 stays node-gone's, and their allocations stay visible.
    expect(await owned()).toEqual(["10.97.0.16/28"]);
    expect((await scan(prefix)).map((r) => r.containerID).sort()).toEqual(["g15", "g16"]);
  }, 60_000);

  test("a wrong or missing client certificate: the daemon refuses to start with a clear message", async () => {
    const c = etcd.certs!;
    const dir = tempDir();
    const serve = async (args: string[]) => {
      const proc = Bun.spawn([BINARY, "serve", "--socket", join(dir, "s.sock"), "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), ...args], { stderr: "pipe" });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      return { stderr, code };
    };
    const rogue = await serve(["--etcd-cacert", c.ca, "--etcd-cert", c.rogueCert, "--etcd-key", c.rogueKey]);
    expect(rogue.code).toBe(1);
    expect(rogue.stderr).toContain("cannot use etcd at");
    const missing = await serve(["--etcd-cacert", c.ca]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("need --etcd-cert and --etcd-key");
    const absent = await serve(["--etcd-cacert", c.ca, "--etcd-cert", join(dir, "nope.crt"), "--etcd-key", c.clientKey]);
    expect(absent.stderr).toContain("does not exist");
    const plain = await serve(["--etcd-endpoints", "http://10.1.2.3:2379"]);
    expect(plain.stderr).toContain("plain http is only allowed on loopback");
  }, 60_000);
});
