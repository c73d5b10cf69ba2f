/**
 * The plugin forwards each command whole to the daemon (POST /v1/cni/command), which runs it;
 * it runs the command itself only when the daemon cannot be asked, or answers as a daemon from
 * before forwarding did. These tests show the command really reaches the daemon, and that the
 * plugin still works against a daemon without the route (an upgrade's first minutes: new
 * binary on the host, old daemon still serving).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ErrorCode } from "../../src/errors.ts";
import { COMMAND_PATH } from "../../src/protocol-command.ts";
import { attachmentEnv, cleanup, type Daemon, netconf, onCleanup, runPlugin, startDaemon, tempDir, waitFor } from "./harness.ts";

let daemon: Daemon;
beforeAll(async () => {
  daemon = await startDaemon();
}, 30_000);
afterAll(cleanup);

let unique = 0;
const conf = (socket: string, ipam: Record<string, unknown> = {}) => ({ ...netconf(socket, ipam, {}, "1.1.0"), name: `fwd-${unique++}` });

/** The count of answered requests of one command in the daemon's metrics. */
async function answered(socket: string, command: string): Promise<number> {
  const text = await (await fetch("http://ipamd/metrics", { unix: socket })).text();
  const line = text.split("\n").find((l) => l.startsWith(`ipamd_request_duration_seconds_count{command="${command}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("forwarded to the daemon", () => {
  test("an ADD is counted as an ADD, and a refusal is the daemon's: logged there, on the forwarding route", async () => {
    const before = await answered(daemon.socket, "add");
    const added = await runPlugin(attachmentEnv("ADD", `fwd-ok-${unique}`), conf(daemon.socket));
    expect(added.exitCode).toBe(0);
    expect(await answered(daemon.socket, "add")).toBe(before + 1);
    const bad = await runPlugin(attachmentEnv("ADD", `fwd-bad-${unique}`), conf(daemon.socket, { ranges: [[{ subnet: "10.0.0.0/40" }]] }));
    expect({ exit: bad.exitCode, code: bad.json?.code }).toEqual({ exit: 1, code: ErrorCode.InvalidNetworkConfig });
    await waitFor(() => daemon.stderr().includes(`POST ${COMMAND_PATH} failed: invalid subnet`), 5000, "the daemon's log of the refusal");
  }, 30_000);
});

/**
 * A daemon from before forwarding, in front of this one: a unix-socket HTTP proxy that answers
 * the command route as an older daemon does (404, code 103) and passes every other request on.
 */
function olderDaemon(target: string): string {
  const socket = join(tempDir(), "older.sock");
  const server = Bun.serve({
    unix: socket,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === COMMAND_PATH) return Response.json({ code: 103, msg: `no such endpoint: POST ${COMMAND_PATH}` }, { status: 404 });
      const body = req.method === "GET" ? undefined : await req.text();
      const res = await fetch(`http://ipamd${url.pathname}`, { unix: target, method: req.method, body, headers: req.headers });
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  onCleanup(() => server.stop(true));
  return socket;
}

describe("a daemon without the forwarding route", () => {
  test("ADD, CHECK, STATUS and DEL still work, over the per-command routes, with the same answers", async () => {
    const older = olderDaemon(daemon.socket);
    const c = conf(older);
    const id = `fwd-old-${unique}`;
    const added = await runPlugin(attachmentEnv("ADD", id), c);
    expect(added).toMatchObject({ exitCode: 0, stderr: "" });
    expect(added.json).toEqual({ cniVersion: "1.1.0", ips: [{ address: "10.20.0.2/24", gateway: "10.20.0.1" }], dns: {} });
    expect((await runPlugin(attachmentEnv("CHECK", id), { ...c, prevResult: added.json })).exitCode).toBe(0);
    expect((await runPlugin({ CNI_COMMAND: "STATUS", CNI_PATH: "/opt/cni/bin" }, c)).exitCode).toBe(0);
    const clash = await runPlugin(attachmentEnv("ADD", `${id}-2`, "eth0", { CNI_ARGS: "IP=10.20.0.2" }), c);
    expect({ exit: clash.exitCode, code: clash.json?.code }).toEqual({ exit: 1, code: ErrorCode.AddressInUse });
    expect((await runPlugin(attachmentEnv("DEL", id), c)).exitCode).toBe(0);
    expect((await runPlugin(attachmentEnv("CHECK", id), { ...c, prevResult: added.json })).json?.code).toBe(ErrorCode.UnknownContainer);
  }, 30_000);
});
