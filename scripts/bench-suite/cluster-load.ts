/**
 * Load for the shared-store benchmarks: daemons each driven by concurrent clients through
 * their sockets, every ADD a fresh attachment; what was answered, how fast, and every failure
 * by why (any one misses a target).
 */
import type { Daemon } from "../../test/e2e/harness.ts";

export interface LoadResult {
  rate: number;
  answered: string[];
  latencies: number[];
  failures: Map<string, number>;
}

export async function durableLoad(daemons: Daemon[], seconds: number, clients: number, subnet: string, tag = "c"): Promise<LoadResult> {
  const answered: string[] = [];
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const failed = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    daemons.flatMap((d, di) =>
      Array.from({ length: clients }, async (_, ci) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const t = performance.now();
          try {
            const res = await fetch("http://ipamd/v1/cni/add", {
              unix: d.socket,
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ network: "bench", containerID: `${tag}${di}-${ci}-${i}`, ifname: "eth0", ranges: [[{ subnet }]] }),
            });
            const body = (await res.json()) as { ips?: { address: string }[]; code?: number; msg?: string };
            if (res.ok && body.ips?.length) {
              answered.push(body.ips[0]!.address.split("/")[0]!);
              latencies.push(performance.now() - t);
            } else failed(`code ${body.code ?? res.status}: ${(body.msg ?? "").replace(/\d+/g, "N").slice(0, 90)}`);
          } catch (err) {
            failed((err as Error).message.split(":")[0]!);
          }
        }
      }),
    ),
  );
  return { rate: answered.length / ((performance.now() - started) / 1000), answered, latencies, failures };
}

export const failedCount = (r: LoadResult): number => [...r.failures.values()].reduce((a, b) => a + b, 0);
export const whyFailed = (r: LoadResult): string => (failedCount(r) ? `: ${[...r.failures].map(([k, v]) => `${v}× ${k}`).join("; ")}` : "");
export const p = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
