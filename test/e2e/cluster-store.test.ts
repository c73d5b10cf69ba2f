/**
 * Cluster-wide allocation on each shared store — a real 3-member etcd cluster (TLS certificates
 * made by the test) and a real kube-apiserver with ipamd's CRDs — with daemons of different node
 * names sharing it, driven through dist/ipamd exactly as a runtime would. Every test runs on
 * both stores; what only one of them has (etcd's members and certificates, the API server's
 * credentials and CRDs) is tested on that one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BINARY, attachmentEnv, cleanup, type Daemon, netconf, runPlugin, waitFor } from "./harness.ts";
import { streamUntilKilled } from "./kill-stream.ts";
import { etcdOnly, kubeOnly } from "./cluster-store-specifics.ts";
import { conf, daemons, etcdStore, kubeStore } from "./shared-stores.ts";

afterAll(cleanup);

const dualConf = (d: Daemon) => netconf(d.socket, { ranges: [[{ subnet: "10.94.0.0/24" }], [{ subnet: "fd94::/120" }]] });

for (const store of [etcdStore(), kubeStore()]) {
  describe(`one pool shared by daemons on ${store.name}`, () => {
    beforeAll(() => store.start(), 120_000);

    test("concurrent ADDs on all daemons until exhaustion: every address handed out exactly once", async () => {
      const scope = await store.scope();
      const ds = await daemons(store, ["node-a", "node-b", "node-c"], scope);
      // 10.95.0.0/26 minus network, gateway and broadcast: 61 addresses for 90 ADDs.
      // Like a runtime, an ADD answered "try again later" (11: 90 plugin processes, 3 daemons and
      // the store share 2 cores here) is retried with the same container ID (idempotent)
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
      const stored = await store.allocations(scope);
      expect(stored).toHaveLength(61);
      expect(new Set(stored.map((r) => r.ip)).size).toBe(61);
      expect(stored.map((r) => `${r.ip}/26`).sort()).toEqual([...handedOut].sort());
      // Blocks: the /26 is four /28 blocks, each claimed by exactly one of the daemons (which one is a race).
      const blocks = await store.blocks(scope);
      expect(blocks.length).toBe(4);
      for (const b of blocks) expect(["node-a", "node-b", "node-c"]).toContain(b.node);
    }, 120_000);

    test("the store goes away mid-burst of dual-stack ADDs: code 11 within 3 s, nothing half-written; back, allocation resumes without a restart", async () => {
      const scope = await store.scope();
      const [d] = await daemons(store, ["node-q"], scope);
      const add = (id: string) => runPlugin(attachmentEnv("ADD", id), dualConf(d!));
      const before = await add("before");
      expect({ out: before.exitCode === 0 ? "" : before.stdout }).toEqual({ out: "" });
      const acked = new Map<string, string[]>();
      const failed = new Set<string>();
      let stop = false;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const run = await add(`w${w}-${i}`);
          if (run.exitCode === 0) acked.set(`w${w}-${i}`, run.json.ips.map((ip: { address: string }) => ip.address));
          else failed.add(`w${w}-${i}`);
        }
      };
      const workers = Array.from({ length: 4 }, (_, w) => worker(w));
      await waitFor(() => acked.size >= 12, 30_000, "a dozen ADDs acknowledged before the outage");
      const late: { id: string; ms: number; code: unknown }[] = [];
      try {
        // The outage begins with ADDs in flight; the workers start no new ones after it.
        const outage = store.outage();
        stop = true;
        await Promise.all([outage, ...workers]);
        for (let i = 0; i < 8; i++) {
          const started = performance.now();
          const run = await add(`late${i}`);
          late.push({ id: `late${i}`, ms: performance.now() - started, code: run.json?.code });
          failed.add(`late${i}`);
        }
      } finally {
        stop = true;
        await store.recover();
      }
      // Started once the store was gone: each answered "try again later", within 3 s.
      for (const l of late) expect({ id: l.id, code: l.code, fast: l.ms < 3000 }).toEqual({ id: l.id, code: 11, fast: true });
      // Back: allocation resumes by itself.
      await waitFor(async () => (await add("after")).exitCode === 0, 60_000, "ADDs to resume with the store back");
      const families = async () => {
        const byContainer = new Map<string, string[]>();
        for (const r of await store.allocations(scope)) byContainer.set(r.containerID, [...(byContainer.get(r.containerID) ?? []), r.ip]);
        return byContainer;
      };
      // Nothing half-written: an attachment holds one address of each family, or none.
      const halfWritten = (held: Map<string, string[]>) => [...held].filter(([, ips]) => ips.map((ip) => (ip.includes(":") ? 6 : 4)).sort().join() !== "4,6");
      expect(halfWritten(await families())).toEqual([]);
      // The runtime retries what failed: each gets its addresses, the same ones if they were committed.
      for (const id of failed) {
        const run = await add(id);
        expect({ id, out: run.exitCode === 0 ? "" : run.stdout }).toEqual({ id, out: "" });
      }
      const held = await families();
      expect(halfWritten(held)).toEqual([]);
      const all = [...held.values()].flat();
      expect(new Set(all).size).toBe(all.length);
      for (const [id, ips] of acked) expect({ id, ips: held.get(id)?.sort() }).toEqual({ id, ips: ips.map((a) => a.split("/")[0]!).sort() });
      expect(held.size).toBe(acked.size + failed.size + 2);
    }, 180_000);

    test("a daemon killed with kill -9 mid-allocation and restarted: acknowledged allocations kept, no duplicates, its blocks still its own", async () => {
      const scope = await store.scope();
      let [d] = await daemons(store, ["node-k"], scope);
      const { acknowledged, failed, queuedAtKill } = await streamUntilKilled(d!, conf(d!, "10.96.0.0/24"), { id: (w, i) => `k${w}-${i}`, workers: 8, killAfter: 10, inFlight: 4 });
      // The kill met both sets: acknowledged ADDs, and ADDs it left unanswered (code 11 each).
      expect(acknowledged.length).toBeGreaterThanOrEqual(10);
      expect(queuedAtKill).toBeGreaterThanOrEqual(4);
      expect(failed.length).toBeGreaterThanOrEqual(queuedAtKill);
      expect(failed.filter((f) => f.run.json?.code !== 11).map((f) => f.run.stdout)).toEqual([]);
      const acked = acknowledged.map((a) => ({ id: a.containerID, ip: a.address }));
      const blocksBefore = (await store.blocks(scope)).map((b) => `${b.cidr}=${b.node}`).sort();
      [d] = await daemons(store, ["node-k"], scope);
      for (const a of acked) expect((await runPlugin(attachmentEnv("ADD", a.id), conf(d!, "10.96.0.0/24"))).json.ips[0].address).toBe(a.ip);
      // The runtime retries what failed: each gets an address (the one committed before the kill, if any).
      const retried = await Promise.all(failed.map((f) => runPlugin(attachmentEnv("ADD", f.containerID), conf(d!, "10.96.0.0/24"))));
      expect(retried.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
      const more = await Promise.all(Array.from({ length: 10 }, (_, i) => runPlugin(attachmentEnv("ADD", `after${i}`), conf(d!, "10.96.0.0/24"))));
      expect(more.every((r) => r.exitCode === 0)).toBe(true);
      const stored = await store.allocations(scope);
      expect(new Set(stored.map((r) => r.ip)).size).toBe(stored.length);
      const blocksAfter = (await store.blocks(scope)).map((b) => `${b.cidr}=${b.node}`).sort();
      for (const b of blocksBefore) expect(blocksAfter).toContain(b);
      expect(blocksAfter.every((b) => b.endsWith("=node-k"))).toBe(true);
    }, 120_000);

    test("blocks of a node that is gone are given up once empty; its live allocations stay visible", async () => {
      const scope = await store.scope();
      const [gone, stays] = await daemons(store, ["node-gone", "node-stays"], scope, {}, { blockPrefixV4: 28, nodeTTL: 2 });
      const c = (d: Daemon) => conf(d, "10.97.0.0/24");
      const owned = async () => (await store.blocks(scope)).filter((b) => b.node === "node-gone").map((b) => b.cidr).sort();
      const blockOf = (address: string) => {
        const [a, b, cc, d] = address.split("/")[0]!.split(".").map(Number);
        return `${a}.${b}.${cc}.${d! & ~15}/28`;
      };
      // node-gone fills its first block and takes a second one (which blocks: its own place in
      // the pool, see engine/blocks.ts), puts two pods there, then its pods go away but those two.
      const add = async (id: string) => {
        const run = await runPlugin(attachmentEnv("ADD", id), c(gone!));
        expect({ exit: run.exitCode, out: run.exitCode ? run.stdout : "" }).toEqual({ exit: 0, out: "" });
        return run.json.ips[0].address as string;
      };
      const first = blockOf(await add("g1"));
      let n = 1;
      while ((await owned()).length < 2) await add(`g${++n}`);
      const second = blockOf(await add(`g${++n}`));
      expect(second).not.toBe(first);
      expect(await owned()).toEqual([first, second].sort());
      for (let i = 1; i <= n - 2; i++) await runPlugin(attachmentEnv("DEL", `g${i}`), c(gone!));
      await gone!.kill9();
      expect(await store.liveNodes(scope)).toContain("node-gone");
      await waitFor(async () => !(await store.liveNodes(scope)).includes("node-gone"), 15_000, "node-gone's announcement (2 s) to run out");
      const gc = async (...flags: string[]) => JSON.parse(await new Response(Bun.spawn([BINARY, "gc", "--json", ...flags, "--socket", stays!.socket], { stdout: "pipe" }).stdout).text());
      // A dry run gives up nothing: the empty block stays node-gone's.
      expect((await gc("--dry-run")).blocksReleased ?? []).toEqual([]);
      expect(await owned()).toEqual([first, second].sort());
      expect((await gc()).blocksReleased).toEqual([`testnet ${first} (node node-gone)`]);
      // The block still holding the last two pods stays node-gone's, and their allocations stay visible.
      expect(await owned()).toEqual([second]);
      expect((await store.allocations(scope)).map((r) => r.containerID).sort()).toEqual([`g${n - 1}`, `g${n}`].sort());
    }, 60_000);

    if (store.name === "etcd") etcdOnly(store as ReturnType<typeof etcdStore>);
    else kubeOnly(store as ReturnType<typeof kubeStore>);
  });
}
