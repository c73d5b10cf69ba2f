/**
 * Running `dist/ipamd install` against a temporary host root. Temp dirs and processes come
 * from the e2e harness, so `cleanup()` in afterEach removes them even when a test fails.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, tempDir } from "../e2e/harness.ts";

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function run(args: string[], binary = BINARY): Promise<Run> {
  const proc = Bun.spawn([binary, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

/** Runs and fails the test with the process's own words unless it exits 0. */
export async function runOk(args: string[], binary = BINARY): Promise<Run> {
  const result = await run(args, binary);
  if (result.exitCode !== 0) throw new Error(`${binary} ${args.join(" ")} exited ${result.exitCode}: ${result.stderr}`);
  return result;
}

export const CONFLIST = {
  cniVersion: "1.0.0",
  name: "podnet",
  plugins: [
    { type: "bridge", bridge: "cni0", isGateway: true, ipam: { type: "ipamd", ranges: [[{ subnet: "10.22.0.0/24" }]] } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

/** A host root plus a source dir holding the netconf, as a DaemonSet pod would see them. */
export function hostSetup(conf: object | string = CONFLIST, name = "10-podnet.conflist") {
  const dir = tempDir("ipamd-install-");
  const host = join(dir, "host");
  const src = join(dir, "src");
  for (const d of [host, src]) Bun.spawnSync(["mkdir", "-p", d]);
  const confFile = join(src, name);
  writeFileSync(confFile, typeof conf === "string" ? conf : JSON.stringify(conf, null, 2));
  return {
    dir,
    host,
    confFile,
    bin: join(host, "opt/cni/bin/ipamd"),
    netconf: join(host, "etc/cni/net.d", name),
    unit: join(host, "etc/systemd/system/ipamd.service"),
  };
}
