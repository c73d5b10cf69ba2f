/**
 * Utilization warnings on a real daemon (`dist/ipamd serve`): a named pool of 20 addresses
 * filled in bursts past 80% and 95%, emptied below 80%, and filled past 80% again. Each
 * crossing up is one warning in the log and one count of
 * ipamd_pool_utilization_warnings_total{threshold}; going back under is logged too, so the
 * next crossing is told again. Bursts go straight to the socket, faster than the daemon's
 * once-a-second count of a pool: the last state of a burst must still be judged.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, type Daemon, startDaemon, tempDir, waitFor } from "./harness.ts";

afterEach(cleanup);

interface LogLine { level: string; msg: string; [field: string]: unknown }

const logLines = (d: Daemon): LogLine[] =>
  d.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine);
/** The pool's utilization lines, as [level, message]. */
const told = (d: Daemon) => logLines(d).filter((l) => l.msg.startsWith("pool small is")).map((l) => [l.level, l.msg]);

async function metrics(d: Daemon): Promise<string> {
  return (await fetch("http://ipamd/metrics", { unix: d.socket })).text();
}
const warningsTotal = (text: string, threshold: number) =>
  Number(new RegExp(`^ipamd_pool_utilization_warnings_total\\{pool="small",network="",threshold="${threshold}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
const ratio = (text: string) => Number(/^ipamd_pool_utilization_ratio\{pool="small",kind="named"\} (\S+)$/m.exec(text)?.[1]);

async function cni(d: Daemon, command: "add" | "del", containerIDs: string[]): Promise<void> {
  const answers = await Promise.all(
    containerIDs.map((containerID) =>
      fetch(`http://ipamd/v1/cni/${command}`, { unix: d.socket, method: "POST", body: JSON.stringify({ network: "util", containerID, ifname: "eth0", pools: ["small"] }) }),
    ),
  );
  expect(answers.map((a) => a.status)).toEqual(containerIDs.map(() => 200));
}
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `c${from + i}`);

describe("utilization warnings", () => {
  test("bursts across 80% and 95% are each told once; back under 80% is told; crossing 80% again is told again", async () => {
    const dir = tempDir();
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ pools: { small: { addresses: ["10.78.0.1-10.78.0.20"], prefix: 24, gateway: "10.78.0.254" } } }));
    const d = await startDaemon({ dir, args: ["--config", config] });
    const within = (what: string, check: () => boolean) => waitFor(check, 10_000, what);

    await cni(d, "add", ids(0, 16)); // 80%
    await within("the 80% warning", () => told(d).length === 1);
    expect(told(d)).toEqual([["warn", "pool small is 80.0% used (threshold 80%)"]]);
    let text = await metrics(d);
    expect([warningsTotal(text, 80), warningsTotal(text, 95), ratio(text)]).toEqual([1, 0, 0.8]);

    await cni(d, "add", ids(16, 19)); // 95%
    await within("the 95% warning", () => told(d).length === 2);
    expect(told(d)[1]).toEqual(["warn", "pool small is 95.0% used (threshold 95%)"]);
    text = await metrics(d);
    expect([warningsTotal(text, 80), warningsTotal(text, 95), ratio(text)]).toEqual([1, 1, 0.95]);

    await cni(d, "del", ids(0, 10)); // 45%
    await within("the pool to be told back under 80%", () => told(d).length === 3);
    expect(told(d)[2]).toEqual(["info", "pool small is back under 80% (45.0% used)"]);
    text = await metrics(d);
    expect([warningsTotal(text, 80), warningsTotal(text, 95), ratio(text)]).toEqual([1, 1, 0.45]);

    await cni(d, "add", ids(19, 26)); // 80% again
    await within("the second 80% warning", () => told(d).length === 4);
    expect(told(d)[3]).toEqual(["warn", "pool small is 80.0% used (threshold 80%)"]);
    text = await metrics(d);
    expect([warningsTotal(text, 80), warningsTotal(text, 95), ratio(text)]).toEqual([2, 1, 0.8]);
  }, 60_000);
});
