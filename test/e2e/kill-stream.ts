/**
 * kill -9 at a point the test can vouch for: workers stream plugin ADDs (fresh container IDs)
 * until `killAfter` are acknowledged; then the daemon is frozen (SIGSTOP) wherever it is, the
 * workers keep starting ADDs until at least `inFlight` of them wait in the frozen daemon's
 * accept queue (ss's Recv-Q of the listening socket), and only then is it SIGKILLed. So the
 * kill always meets both sets: ADDs acknowledged, and ADDs in flight that cannot be answered.
 */
import { attachmentEnv, type Daemon, type PluginRun, runPlugin, waitFor } from "./harness.ts";

export interface Acknowledged {
  containerID: string;
  address: string; // as the plugin printed it, e.g. "10.50.x.y/16"
  result: unknown; // the whole CNI result, for CHECK's prevResult
}

export interface KillStream {
  acknowledged: Acknowledged[];
  /** Every ADD that did not succeed: all were in flight when the daemon froze or died. */
  failed: { containerID: string; run: PluginRun }[];
  /** Connections waiting in the frozen daemon's accept queue at the kill. */
  queuedAtKill: number;
}

/** Connections waiting to be accepted on a listening unix socket. */
export function acceptQueue(socket: string): number {
  const ss = Bun.spawnSync(["ss", "-xlH", "src", socket], { stdout: "pipe", stderr: "pipe" });
  if (ss.exitCode !== 0) throw new Error(`ss failed: ${ss.stderr.toString()}`);
  const line = ss.stdout.toString().split("\n").find((l) => l.includes(socket));
  return Number(line?.trim().split(/\s+/)[2] ?? 0);
}

export async function streamUntilKilled(
  daemon: Daemon,
  conf: object,
  options: { id: (worker: number, i: number) => string; workers: number; killAfter: number; inFlight: number },
): Promise<KillStream> {
  const acknowledged: Acknowledged[] = [];
  const failed: KillStream["failed"] = [];
  let frozen = false;
  let stop = false;
  let queuedAtKill = 0;
  let killed: Promise<void> | undefined;
  const freezeThenKill = async () => {
    daemon.proc.kill("SIGSTOP");
    try {
      await waitFor(() => (queuedAtKill = acceptQueue(daemon.socket)) >= options.inFlight, 20_000, `${options.inFlight} ADDs queued at the frozen daemon`);
    } finally {
      stop = true; // no new ADD starts; the ones in flight meet the kill
      await daemon.kill9();
    }
  };
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const containerID = options.id(w, i);
      const run = await runPlugin(attachmentEnv("ADD", containerID), conf);
      if (run.exitCode === 0) {
        acknowledged.push({ containerID, address: run.json?.ips?.[0]?.address, result: run.json });
        if (acknowledged.length >= options.killAfter && !frozen) {
          frozen = true;
          killed = freezeThenKill();
        }
      } else {
        failed.push({ containerID, run });
        if (!frozen) {
          stop = true; // stop every worker: none may keep spawning after the test has failed
          throw new Error(`ADD ${containerID} failed before the kill: ${run.stdout}${run.stderr}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  await killed;
  return { acknowledged, failed, queuedAtKill };
}
