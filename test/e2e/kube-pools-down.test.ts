/**
 * `serve --pools-from kubernetes` with no API server answering: the daemon does not wait for
 * it — it serves the config file's pools, and says why the objects' are missing.
 */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { attachmentEnv, cleanup, freePort, runPlugin, startDaemon, tempDir } from "./harness.ts";

afterEach(cleanup);

test("an API server that does not answer: the config file's pools are served within seconds", async () => {
  const dir = tempDir();
  const kubeconfig = join(dir, "kubeconfig");
  // A loopback port nothing listens on.
  const server = `https://127.0.0.1:${freePort()}`;
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: "v1", kind: "Config", "current-context": "dead",
    clusters: [{ name: "dead", cluster: { server, "insecure-skip-tls-verify": true } }],
    users: [{ name: "u", user: { token: "x" } }],
    contexts: [{ name: "dead", context: { cluster: "dead", user: "u" } }],
  }));
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ pools: { v4: { addresses: ["10.120.0.0/24"], prefix: 24 } } }));
  // startDaemon waits 10 s for the socket to answer: a daemon that waited for the API forever fails here.
  const daemon = await startDaemon({ dir, args: ["--config", config, "--pools-from", "kubernetes", "--kubeconfig", kubeconfig] });
  const add = await runPlugin(attachmentEnv("ADD", "c1"), { cniVersion: "1.0.0", name: "n", type: "ipamd", ipam: { type: "ipamd", socket: daemon.socket, pool: "v4" } });
  expect(add.json.ips[0].address).toBe("10.120.0.1/24");
  expect(daemon.stderr()).toContain("serving the config file's pools meanwhile");
}, 30_000);
