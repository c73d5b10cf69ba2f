/**
 * Load for the shared-store benchmarks: daemons each driven by concurrent clients through
 * their sockets, every ADD a fresh attachment; what was answered, how fast, and every failure
 * by why (any one misses a target). A load may be summed over several slices, so that peers
 * measured in turns are each the sum of their turns.
 */
import type { Daemon } from "../../test/e2e/harness.ts";

/** A peer's load, summed over its slices. */
export class Load {
  /** Addresses answered, without prefix. */
  answered: string[] = [];
  latencies: number[] = [];
  /** Every request not answered as asked, by why: any one misses the target. */
  failures = new Map<string, number>();
  seconds = 0;
  count = 0;

  failed(why: string): void {
    this.failures.set(why, (this.failures.get(why) ?? 0) + 1);
  }

  get rate(): number {
    return this.count / this.seconds;
  }

  get failedCount(): number {
    return [...this.failures.values()].reduce((a, b) => a + b, 0);
  }

  /** The failures by reason, for a table (empty when none). */
  get why(): string {
    return this.failedCount ? `: ${[...this.failures].map(([k, v]) => `${v}× ${k}`).join(", ")}` : "";
  }
}

/** One slice: every daemon × `clients` clients doing ADDs for `seconds`, added to `load`; `tag` keeps container IDs unique to the slice. */
export async function durableSlice(load: Load, daemons: Daemon[], seconds: number, clients: number, subnet: string, tag: string): Promise<void> {
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
              body: JSON.stringify({ network: "bench", containerID: `${tag}-d${di}-c${ci}-${i}`, ifname: "eth0", ranges: [[{ subnet }]] }),
            });
            const body = (await res.json()) as { ips?: { address: string }[]; code?: number; msg?: string };
            if (res.ok && body.ips?.length) {
              load.answered.push(body.ips[0]!.address.split("/")[0]!);
              load.latencies.push(performance.now() - t);
              load.count++;
            } else load.failed(`HTTP ${res.status} code ${body.code ?? "none"} (${(body.msg ?? "").replace(/https?:\/\/[^ ,)]+/g, "URL").replace(/\d+/g, "N").slice(0, 90)})`);
          } catch (err) {
            load.failed((err as Error).message.split(":")[0]!);
          }
        }
      }),
    ),
  );
  load.seconds += (performance.now() - started) / 1000;
}

/** One load of `seconds`, not sliced. */
export async function durableLoad(daemons: Daemon[], seconds: number, clients: number, subnet: string, tag = "c"): Promise<Load> {
  const load = new Load();
  await durableSlice(load, daemons, seconds, clients, subnet, tag);
  return load;
}

export const p = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
