/**
 * The daemon's periodic sweep (`serve`, every reclaimInterval): it drops history older than
 * historyRetention, and a sweep that fails is logged and the next one still runs.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEtcd } from "../store/etcd-cluster.ts";
import { cleanup, type Daemon, startDaemon, tempDir, waitFor } from "./harness.ts";

afterEach(cleanup);

const DAY = 86_400_000;
const ranges = [[{ subnet: "10.82.0.0/24" }]];

async function cni(d: Daemon, command: "add" | "del", containerID: string, netns = ""): Promise<string | undefined> {
  const res = await fetch(`http://ipamd/v1/cni/${command}`, { unix: d.socket, method: "POST", body: JSON.stringify({ network: "sweep", containerID, ifname: "eth0", netns, ranges }) });
  expect(res.status).toBe(200);
  return command === "add" ? ((await res.json()) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0] : undefined;
}
const history = async (d: Daemon, containerID: string) =>
  ((await (await fetch(`http://ipamd/v1/history?container=${containerID}`, { unix: d.socket })).json()) as { events: { kind: string }[] }).events.map((e) => e.kind);
const logged = (d: Daemon, level: string, text: string) =>
  d.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) => l.level === level && String(l.msg).includes(text));

describe("the periodic sweep", () => {
  test("drops history older than historyRetention, keeps younger history and every allocation", async () => {
    const dir = tempDir();
    const first = await startDaemon({ dir });
    await cni(first, "add", "old");
    await cni(first, "del", "old");
    for (const id of ["mid", "new"]) await cni(first, "add", id);
    expect(await first.stop()).toBe(0);
    // Age the stopped daemon's history as if it had been recorded over two days, in the order
    // it was (history is kept in that order): "old" two days back, "mid" half a day.
    const db = new Database(first.db);
    db.run("UPDATE events SET at = at - ? WHERE container_id = 'old'", [2 * DAY]);
    db.run("UPDATE events SET at = at - ? WHERE container_id = 'mid'", [DAY / 2]);
    const aged = db.query("SELECT container_id AS id, COUNT(*) AS n FROM events WHERE at < ? GROUP BY container_id").all(Date.now() - DAY);
    db.close();
    expect(aged).toEqual([{ id: "old", n: 2 }]);
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ historyRetention: 1, reclaimInterval: 1 }));
    const d = await startDaemon({ dir, args: ["--config", config] });
    await waitFor(async () => (await history(d, "old")).length === 0, 15_000, "the sweep to drop the two-day-old history");
    expect({ mid: await history(d, "mid"), new: await history(d, "new") }).toEqual({ mid: ["allocated"], new: ["allocated"] });
    const held = ((await (await fetch("http://ipamd/v1/allocations", { unix: d.socket })).json()) as { allocations: { containerID: string }[] }).allocations;
    expect(held.map((a) => a.containerID).sort()).toEqual(["mid", "new"]);
  }, 60_000);

  test("a sweep that fails (etcd down) is logged, and the next one runs once etcd is back", async () => {
    const etcd = await startEtcd();
    const dir = tempDir();
    const netnsDir = join(dir, "netns");
    mkdirSync(netnsDir);
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ reclaimInterval: 1, reclaimGrace: 0, reclaimNetnsDirs: [netnsDir], etcd: { nodeTTL: 5 } }));
    const d = await startDaemon({ dir, args: ["--config", config, "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(","), "--etcd-prefix", `/sweep-${process.pid}/`] });
    const netns = join(netnsDir, "pod");
    writeFileSync(netns, ""); // alive for now
    const ip = await cni(d, "add", "pod", netns);
    await etcd.kill(0);
    try {
      await waitFor(() => logged(d, "error", "leak sweep failed").length > 0, 20_000, "a failed sweep to be logged");
      rmSync(netns); // the pod dies while etcd is down
    } finally {
      await etcd.start(0);
    }
    await waitFor(() => logged(d, "info", `reclaimed ${ip}`).length > 0, 30_000, `a later sweep to reclaim ${ip}`);
    expect(await history(d, "pod")).toEqual(["reclaimed", "allocated"]);
  }, 90_000);
});
