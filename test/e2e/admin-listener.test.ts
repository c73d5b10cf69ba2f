/** serve --admin-listen: metrics, read-only admin API and dashboard over TCP; mutations need mTLS. */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makeCerts } from "../store/etcd-cluster.ts";
import { attachmentEnv, BINARY, cleanup, freePort, netconf, runPlugin, startDaemonWithAdmin, tempDir } from "./harness.ts";

afterEach(cleanup);

describe("admin listener", () => {
  test("plain loopback HTTP: metrics, admin reads and the dashboard; no CNI calls and no mutations", async () => {
    const daemon = await startDaemonWithAdmin();
    await runPlugin(attachmentEnv("ADD", "web"), netconf(daemon.socket));
    const base = `http://127.0.0.1:${daemon.port}`;
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("ipamd_allocations_total");
    expect(((await (await fetch(`${base}/v1/allocations`)).json()) as any).allocations[0].containerID).toBe("web");
    const page = await fetch(`${base}/`);
    expect(page.headers.get("content-type")).toContain("text/html");
    const release = await fetch(`${base}/v1/allocations/10.20.0.2/release`, { method: "POST", body: JSON.stringify({ confirm: true }) });
    expect(release.status).toBe(403);
    expect(((await release.json()) as any).code).toBe(104);
    // Reservations likewise: listed by anyone who may read, changed only on the socket or over mTLS.
    for (const path of ["/v1/reservations", "/v1/reservations/release"]) {
      const change = await fetch(`${base}${path}`, { method: "POST", body: JSON.stringify({ pool: "v4", first: "10.20.0.9" }) });
      expect({ path, status: change.status, code: ((await change.json()) as any).code }).toEqual({ path, status: 403, code: 104 });
    }
    expect(await (await fetch(`${base}/v1/reservations`)).json()).toEqual({ reservations: [] });
    expect((await fetch(`${base}/v1/cni/add`, { method: "POST", body: "{}" })).status).toBe(404);
    // Over the unix socket the same release is allowed.
    expect((await fetch("http://ipamd/v1/allocations/10.20.0.2/release", { unix: daemon.socket, method: "POST", body: JSON.stringify({ confirm: true }) })).status).toBe(200);
  }, 30_000);

  test("a port already taken stops the daemon at start saying so; the harness then tries another", async () => {
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const dir = tempDir();
      const proc = Bun.spawn([BINARY, "serve", "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db"), "--admin-listen", `127.0.0.1:${taken.port}`], { stderr: "pipe" });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect({ code, stderr: stderr.trim() }).toEqual({ code: 1, stderr: `ipamd serve: Failed to start server. Is port ${taken.port} in use?` });
      const picks = [taken.port]; // the harness's first pick is the taken port, as when another process wins the race
      const daemon = await startDaemonWithAdmin({ pickPort: () => picks.shift() ?? freePort() });
      expect(daemon.port).not.toBe(taken.port);
      expect((await fetch(`http://127.0.0.1:${daemon.port}/v1/status`)).status).toBe(200);
    } finally {
      taken.stop(true);
    }
  }, 30_000);

  test("a non-loopback address without TLS is refused at start", async () => {
    const dir = tempDir();
    const proc = Bun.spawn([BINARY, "serve", "--socket", join(dir, "s.sock"), "--db", join(dir, "d.db"), "--admin-listen", "0.0.0.0:9464"], { stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(1);
    expect(stderr).toContain("needs --tls-cert, --tls-key and --client-ca");
  }, 30_000);

  test("mTLS: a client without a certificate from the client CA is refused; one with it may release", async () => {
    const certs = await makeCerts(tempDir());
    const daemon = await startDaemonWithAdmin({ args: ["--tls-cert", certs.serverCert, "--tls-key", certs.serverKey, "--client-ca", certs.ca] });
    await runPlugin(attachmentEnv("ADD", "web"), netconf(daemon.socket));
    const ca = await Bun.file(certs.ca).text();
    const url = `https://127.0.0.1:${daemon.port}`;
    await expect(fetch(`${url}/metrics`, { tls: { ca } })).rejects.toThrow();
    const rogue = { ca, cert: await Bun.file(certs.rogueCert).text(), key: await Bun.file(certs.rogueKey).text() };
    await expect(fetch(`${url}/metrics`, { tls: rogue })).rejects.toThrow();
    const client = { ca, cert: await Bun.file(certs.clientCert).text(), key: await Bun.file(certs.clientKey).text() };
    expect((await fetch(`${url}/metrics`, { tls: client })).status).toBe(200);
    const form = await fetch(`${url}/v1/allocations/10.20.0.2/release`, { method: "POST", body: JSON.stringify({ confirm: true }), headers: { "content-type": "text/plain" }, tls: client });
    expect(form.status).toBe(403); // what a cross-site form could send
    const release = await fetch(`${url}/v1/allocations/10.20.0.2/release`, { method: "POST", body: JSON.stringify({ confirm: true }), headers: { "content-type": "application/json" }, tls: client });
    expect(release.status).toBe(200);
  }, 30_000);
});
