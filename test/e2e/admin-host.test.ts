/**
 * DNS rebinding: a web page on evil.example re-points its own name at 127.0.0.1, and the
 * browser then lets that page read http://evil.example:9464/ — the admin listener, dashboard
 * and metrics included. What gives it away is the Host header, so the listener answers only
 * its own address (with or without its port), `localhost` on loopback, and the names given
 * with --admin-host; anything else is a structured 403 (code 104) and is not served.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { attachmentEnv, BINARY, cleanup, netconf, runPlugin, startDaemon, tempDir } from "./harness.ts";

afterEach(cleanup);

/** Starts the daemon with its admin listener on 127.0.0.1:0 (a free port) and returns that port, from its log. */
async function listening(more: string[] = []): Promise<{ daemon: Awaited<ReturnType<typeof startDaemon>>; port: number }> {
  const daemon = await startDaemon({ args: ["--admin-listen", "127.0.0.1:0", ...more] });
  const line = daemon.stderr().split("\n").find((l) => l.includes('"admin listener"'));
  const port = Number(new URL(JSON.parse(line ?? "{}").url ?? "http://x").port);
  if (!port) throw new Error(`the daemon did not log its admin listener's address: ${daemon.stderr()}`);
  return { daemon, port };
}
const PATHS = ["/", "/metrics", "/v1/allocations", "/v1/pools", "/v1/status", "/v1/nope"];

/** A GET to the listener at 127.0.0.1:p with the given Host header (or none at all). */
async function get(p: number, path: string, host: string | null): Promise<{ status: number; body: string }> {
  if (host === null) {
    // fetch always sends a Host; an HTTP/1.0 request without one needs a raw socket.
    const { promise, resolve } = Promise.withResolvers<string>();
    let text = "";
    await Bun.connect({
      hostname: "127.0.0.1",
      port: p,
      socket: {
        open: (s) => void s.write(`GET ${path} HTTP/1.0\r\n\r\n`),
        data: (_s, d) => void (text += new TextDecoder().decode(d)),
        close: () => resolve(text),
      },
    });
    const answer = await promise;
    return { status: Number(answer.split(" ")[1]), body: answer.slice(answer.indexOf("\r\n\r\n") + 4) };
  }
  const res = await fetch(`http://127.0.0.1:${p}${path}`, { headers: { host } });
  return { status: res.status, body: await res.text() };
}

async function expectRefused(p: number, host: string | null): Promise<void> {
  for (const path of PATHS) {
    const { status, body } = await get(p, path, host);
    expect({ path, host, status }).toEqual({ path, host, status: 403 });
    const error = JSON.parse(body) as { code: number; msg: string };
    expect(error.code).toBe(104);
    expect(error.msg).toContain("--admin-host");
    expect(body).not.toContain("ipamd_allocations_total");
  }
}

async function expectServed(p: number, host: string): Promise<void> {
  for (const path of ["/", "/metrics", "/v1/allocations", "/v1/status"]) {
    expect({ path, host, status: (await get(p, path, host)).status }).toEqual({ path, host, status: 200 });
  }
}

describe("admin listener Host check (DNS rebinding)", () => {
  test("a foreign Host is refused on every path; its own address, with or without the port, and localhost are served", async () => {
    const { daemon, port: p } = await listening();
    await runPlugin(attachmentEnv("ADD", "web"), netconf(daemon.socket));
    await expectRefused(p, "evil.example");
    await expectRefused(p, `evil.example:${p}`);
    await expectRefused(p, `127.0.0.1.evil.example:${p}`);
    await expectRefused(p, `127.0.0.1:${p + 1}`); // its address, another port
    await expectRefused(p, null);
    for (const host of [`127.0.0.1:${p}`, "127.0.0.1", `localhost:${p}`, "LocalHost"]) await expectServed(p, host);
    // Refusals are client errors in the log, not bugs.
    expect(daemon.stderr()).toContain('failed: Host \\"evil.example\\" is not');
    expect(daemon.stderr()).not.toContain("unexpected error");
  }, 20_000);

  test("names given with --admin-host (repeated or comma-separated) are served, any case; others still refused", async () => {
    const { port: p } = await listening(["--admin-host", "ipamd.example.com,metrics.internal", "--admin-host", "node-1"]);
    for (const host of ["ipamd.example.com", `IPAMD.Example.com:${p}`, "metrics.internal", `node-1:${p}`, `127.0.0.1:${p}`]) await expectServed(p, host);
    await expectRefused(p, "evil.example");
    await expectRefused(p, "example.com");
    await expectRefused(p, `ipamd.example.com:${p + 1}`);
  }, 20_000);

  const bad: [string, string[], RegExp][] = [
    ["a URL as --admin-host", ["--admin-listen", "127.0.0.1:PORT", "--admin-host", "http://ipamd.example.com"], /--admin-host: "http:\/\/ipamd.example.com" is not a host name or address/],
    ["an empty --admin-host", ["--admin-listen", "127.0.0.1:PORT", "--admin-host", "a,,b"], /--admin-host: "" is not a host name or address/],
    ["--admin-host without --admin-listen", ["--admin-host", "ipamd.example.com"], /--admin-host needs --admin-listen/],
  ];
  for (const [what, args, message] of bad) {
    test(`${what} is refused at start`, async () => {
      const dir = tempDir();
      const proc = Bun.spawn([BINARY, "serve", "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db"), ...args.map((a) => a.replace("PORT", "0"))], { stdout: "pipe", stderr: "pipe" });
      const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(killer);
      expect({ code, stderr }).toEqual({ code: 1, stderr: expect.stringMatching(message) });
    }, 10_000);
  }
});
