/**
 * A CNI command forwarded whole (POST /v1/cni/command): the daemon runs the plugin's own code
 * and answers with what the plugin prints and its exit code; a body that is not a command is
 * refused without an exit code, so the plugin knows to run the command itself.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type DaemonApp } from "../../src/daemon/app.ts";
import { Engine } from "../../src/engine/engine.ts";
import { COMMAND_PATH, encodeCommand, EXIT_CODE_HEADER, type ForwardedEnv } from "../../src/protocol-command.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";

const dir = mkdtempSync(join(tmpdir(), "ipamd-command-"));
let n = 0;
let app: DaemonApp;
let store: SqliteStore;
const unexpected: unknown[] = [];

beforeEach(async () => {
  store = await SqliteStore.open(join(dir, `command-${n++}.db`));
  app = createApp(await Engine.start(store, { node: "node-a" }), { onUnexpectedError: (err) => unexpected.push(err) });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(unexpected).toEqual([]);
});

const netconf = (ipam: Record<string, unknown> = {}, cniVersion = "1.1.0") =>
  JSON.stringify({ cniVersion, name: "n1", type: "bridge", ipam: { type: "ipamd", ranges: [[{ subnet: "10.3.0.0/29" }]], ...ipam } });
const env = (command: string, containerID = "c1"): ForwardedEnv => ({ CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" });

/** The answer as the plugin reads it: exit code (null: not a command's answer), HTTP status, stdout. */
async function send(body: string): Promise<{ exit: string | null; status: number; stdout: string; json: any }> {
  const res = await app.request(COMMAND_PATH, { method: "POST", body });
  const stdout = await res.text();
  return { exit: res.headers.get(EXIT_CODE_HEADER), status: res.status, stdout, json: stdout ? JSON.parse(stdout) : undefined };
}

describe("a forwarded command is run as the plugin would run it", () => {
  test("ADD prints the CNI result in the netconf's version; DEL prints nothing; both exit 0", async () => {
    const added = await send(encodeCommand({ env: env("ADD") }, netconf({}, "0.4.0")));
    expect(added).toMatchObject({ exit: "0", status: 200 });
    expect(added.json).toEqual({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.3.0.2/29", gateway: "10.3.0.1" }], dns: {} });
    expect(added.stdout.endsWith("}\n")).toBe(true);
    const [record] = await store.attachment("n1", { containerID: "c1", ifname: "eth0" });
    expect(record).toMatchObject({ ip: "10.3.0.2", netns: "/var/run/netns/x" });
    expect(await send(encodeCommand({ env: env("DEL") }, netconf()))).toMatchObject({ exit: "0", status: 200, stdout: "" });
    expect(await store.attachment("n1", { containerID: "c1", ifname: "eth0" })).toEqual([]);
  }, 30_000);

  test("the plugin's resolvConf text becomes the result's dns; a netconf naming one the plugin did not send is code 5", async () => {
    const added = await send(encodeCommand({ env: env("ADD"), resolvConf: "nameserver 10.96.0.10\nsearch svc.cluster.local\n" }, netconf({ resolvConf: "/etc/resolv.conf" })));
    expect(added.json.dns).toEqual({ nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] });
    const unsent = await send(encodeCommand({ env: env("ADD", "c2") }, netconf({ resolvConf: "/etc/resolv.conf" })));
    expect(unsent).toMatchObject({ exit: "1", json: { code: 5, msg: "cannot read resolvConf /etc/resolv.conf: the plugin did not send it" } });
    // Refused before the daemon allocated: nothing is left behind for c2.
    expect(await store.attachment("n1", { containerID: "c2", ifname: "eth0" })).toEqual([]);
  }, 30_000);

  test("failures are CNI error objects with the plugin's codes, exit 1, and an HTTP status by code", async () => {
    const cases: [ForwardedEnv, string, number, number, string][] = [
      [{ ...env("ADD"), CNI_NETNS: undefined }, netconf(), 4, 400, "required env variables [CNI_NETNS] missing"],
      [env("FROB"), netconf(), 4, 400, "unknown CNI_COMMAND: FROB"],
      [env("ADD"), "{", 6, 400, "network configuration on stdin is not valid JSON"],
      [env("ADD"), netconf({}, "0.2.0"), 1, 400, "incompatible CNI versions"],
      [env("STATUS"), netconf({}, "1.0.0"), 1, 400, "config version does not allow STATUS"],
      [env("ADD"), netconf({ ranges: [[{ subnet: "10.3.0.0/40" }]] }), 7, 400, "invalid subnet"],
      [env("CHECK", "nobody"), netconf(), 7, 400, "CHECK needs prevResult"],
    ];
    for (const [e, stdin, code, status, msg] of cases) {
      const answer = await send(encodeCommand({ env: e }, stdin));
      expect({ exit: answer.exit, status: answer.status, code: answer.json?.code }).toEqual({ exit: "1", status, code });
      expect(answer.json.msg).toContain(msg);
      expect(typeof answer.json.cniVersion).toBe("string");
    }
    const full = await send(encodeCommand({ env: env("ADD", "x") }, netconf({ ranges: [[{ subnet: "10.3.1.0/30" }]] })));
    expect(full.exit).toBe("0");
    expect(await send(encodeCommand({ env: env("ADD", "y") }, netconf({ ranges: [[{ subnet: "10.3.1.0/30" }]] })))).toMatchObject({ exit: "1", status: 409, json: { code: 100 } });
  }, 30_000);

  test("STATUS and GC answer with empty stdout", async () => {
    expect(await send(encodeCommand({ env: { CNI_COMMAND: "STATUS", CNI_PATH: "/opt/cni/bin" } }, netconf()))).toMatchObject({ exit: "0", stdout: "" });
    await send(encodeCommand({ env: env("ADD", "stale") }, netconf()));
    const gc = JSON.stringify({ ...JSON.parse(netconf()), "cni.dev/valid-attachments": [] });
    expect(await send(encodeCommand({ env: { CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" } }, gc))).toMatchObject({ exit: "0", stdout: "" });
    expect(await store.attachment("n1", { containerID: "stale", ifname: "eth0" })).toEqual([]);
  }, 30_000);
});

describe("a body that is not a command is refused without an exit code (the plugin then runs it itself)", () => {
  test("no head line, a head that is not JSON, a head of the wrong shape", async () => {
    expect(await send("just a netconf")).toMatchObject({ exit: null, status: 400, json: { code: 6 } });
    expect(await send(`{nope\n${netconf()}`)).toMatchObject({ exit: null, status: 400, json: { code: 6 } });
    expect(await send(`{"env":{"CNI_COMMAND":5}}\n${netconf()}`)).toMatchObject({ exit: null, status: 400, json: { code: 7 } });
  }, 30_000);
});
