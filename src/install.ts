/**
 * `ipamd install`: puts this very binary into the runtime's CNI bin dir and the netconf into
 * its conf dir, both atomically (see install/atomic-file.ts), so an installer DaemonSet or a
 * package script can run it on every start: identical files are left untouched, changed ones
 * are replaced without a moment where a runtime could exec half a binary or parse half a
 * netconf. The binary goes first and the netconf second, so a runtime never sees a network
 * whose plugin is missing; uninstall goes the other way round.
 */
import { type Content, placeFile, type PlaceResult, removeFile, removeLeftovers } from "./install/atomic-file.ts";
import { checkUnderHostRoot, HostPathError } from "./install/host-path.ts";
import { isIpamdNetconf, NetconfError, validateNetconf } from "./install/netconf.ts";
import { systemdUnit } from "./install/systemd-unit.ts";
import { VERSION } from "./version.ts";

export interface InstallOptions {
  binDir?: string;
  confDir?: string;
  conf?: string;
  hostRoot?: string;
  unitDir?: string;
  wait?: boolean;
  uninstall?: boolean;
  systemd?: boolean;
  dryRun?: boolean;
}

export class InstallError extends Error {}

interface Item {
  what: string;
  target: string;
  mode: number;
  /** Reads (and validates) what should be at target now. */
  load(): Promise<Content>;
}

interface Plan {
  items: Item[];
  /** The netconf's target, for uninstall; its source for --wait. */
  netconf?: { source: string; target: string };
  unit?: string;
  hostBinary: string;
  hostRoot?: string;
  /** Set once the leftovers of a killed run are gone: --wait's later passes skip that. */
  leftoversRemoved?: boolean;
}

async function checkDir(flag: string, value: string): Promise<string> {
  const { isAbsolute, normalize } = await import("node:path");
  if (!isAbsolute(value)) throw new InstallError(`${flag} must be an absolute path, not "${value}"`);
  return normalize(value);
}

/** Where the plan's files go, and where their content comes from. Fails on bad flags. */
async function makePlan(options: InstallOptions): Promise<Plan> {
  const { basename, join, resolve } = await import("node:path");
  const { stat } = await import("node:fs/promises");
  if (options.wait && (options.uninstall || options.dryRun)) throw new InstallError("--wait cannot be combined with --uninstall or --dry-run");
  const binDir = await checkDir("--bin-dir", options.binDir ?? "/opt/cni/bin");
  const confDir = await checkDir("--conf-dir", options.confDir ?? "/etc/cni/net.d");
  const unitDir = await checkDir("--unit-dir", options.unitDir ?? "/etc/systemd/system");
  const hostRoot = options.hostRoot === undefined ? undefined : await checkDir("--host-root", options.hostRoot);
  if (hostRoot !== undefined && !(await stat(hostRoot).catch(() => null))?.isDirectory()) {
    throw new InstallError(`host root ${hostRoot} is not a directory (is the host's filesystem mounted there?)`);
  }
  const onHost = (dir: string, name: string) => join(hostRoot ?? "/", dir, name);

  if (!options.uninstall && !Bun.main.startsWith("/$bunfs/")) {
    throw new InstallError("install copies the running executable, so it must run from the compiled binary (make build; dist/ipamd install …)");
  }
  const self = process.execPath;
  const hostBinary = join(binDir, "ipamd");
  const items: Item[] = [{ what: "binary", target: onHost(binDir, "ipamd"), mode: 0o755, load: async () => ({ copyOf: self }) }];

  let netconf: Plan["netconf"];
  if (options.conf !== undefined) {
    const source = resolve(options.conf);
    netconf = { source, target: onHost(confDir, basename(source)) };
    items.push({ what: "netconf", target: netconf.target, mode: 0o644, load: () => readNetconf(source) });
  }
  let unit: string | undefined;
  if (options.systemd) {
    unit = onHost(unitDir, "ipamd.service");
    const bytes = new TextEncoder().encode(systemdUnit({ binary: hostBinary, version: VERSION }));
    items.push({ what: "systemd unit", target: unit, mode: 0o644, load: async () => ({ bytes }) });
  }
  return { items, netconf, unit, hostBinary, hostRoot };
}

async function readNetconf(source: string): Promise<Content> {
  const file = Bun.file(source);
  if (!(await file.exists())) throw new InstallError(`netconf ${source} does not exist`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  validateNetconf(source, new TextDecoder().decode(bytes));
  return { bytes };
}

const megabytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} bytes`);

function describe(item: Item, result: PlaceResult, dryRun: boolean): string {
  const mode = item.mode.toString(8).padStart(4, "0");
  switch (result.outcome) {
    case "unchanged":
      return `${item.what} ${result.path} is up to date`;
    case "mode":
      return dryRun ? `would set ${item.what} ${result.path} to mode ${mode}` : `${item.what} ${result.path}: mode set to ${mode}`;
    case "written":
      return dryRun ? `would write ${item.what} ${result.path} (${megabytes(result.bytes)}, mode ${mode})` : `installed ${item.what} ${result.path} (${megabytes(result.bytes)})`;
  }
}

/** Under --host-root, refuses a target that a symlink would lead out of it (install/host-path.ts). */
async function checkHostPaths(plan: Plan): Promise<void> {
  if (plan.hostRoot === undefined) return;
  for (const item of plan.items) await checkUnderHostRoot(plan.hostRoot, item.target);
}

/** At start: the temporary files of a run that was killed before its rename. Once per command. */
async function removeLeftoversOf(plan: Plan, dryRun: boolean): Promise<void> {
  if (plan.leftoversRemoved) return;
  plan.leftoversRemoved = true;
  for (const item of plan.items) {
    for (const path of await removeLeftovers(item.target, dryRun)) {
      process.stdout.write(`${dryRun ? "would remove" : "removed"} ${path}, left by an interrupted install\n`);
    }
  }
}

/** One pass over the plan; `skip` lets --wait pass over files it knows are current. */
async function installOnce(plan: Plan, dryRun: boolean, skip?: (item: Item, content: Content) => Promise<boolean>, done?: (item: Item, content: Content) => Promise<void>): Promise<void> {
  await checkHostPaths(plan); // again on every --wait pass: the host may have changed meanwhile
  // Everything is read and validated before anything is written: a bad netconf leaves the
  // host exactly as it was.
  const contents = await Promise.all(plan.items.map((item) => item.load()));
  await removeLeftoversOf(plan, dryRun);
  for (const [i, item] of plan.items.entries()) {
    const content = contents[i]!;
    if (skip && (await skip(item, content))) continue;
    const result = await placeFile(item.target, content, item.mode, dryRun);
    process.stdout.write(`${describe(item, result, dryRun)}\n`);
    await done?.(item, content);
  }
  if (plan.unit) {
    const where = plan.hostRoot ? " on the host" : "";
    process.stdout.write(`${dryRun ? "then, " : ""}to start it${where}: systemctl daemon-reload && systemctl enable --now ipamd (ExecStart=${plan.hostBinary} serve)\n`);
  }
}

async function uninstall(plan: Plan, dryRun: boolean): Promise<void> {
  const verb = dryRun ? "would remove" : "removed";
  if (plan.unit) {
    process.stdout.write(`stop it first: systemctl disable --now ipamd\n`);
  }
  // Netconf first: no moment where a runtime sees a network whose plugin is gone.
  for (const item of [...plan.items].reverse()) {
    if (item.what === "netconf") {
      const text = await Bun.file(item.target).text().catch(() => null);
      if (text !== null && !isIpamdNetconf(text)) {
        process.stdout.write(`left ${item.target} alone: it is not an ipamd network\n`);
        continue;
      }
    }
    const removed = await removeFile(item.target, dryRun);
    process.stdout.write(removed ? `${verb} ${item.what} ${item.target}\n` : `${item.what} ${item.target} is not there\n`);
  }
  if (plan.unit && !dryRun) process.stdout.write(`then: systemctl daemon-reload\n`);
}

const isExpected = (err: unknown): err is Error => err instanceof InstallError || err instanceof NetconfError || err instanceof HostPathError;

/** The `install` subcommand. Returns the exit code; failures are one line on stderr. */
export async function installCommand(options: InstallOptions): Promise<number> {
  try {
    const plan = await makePlan(options);
    await checkHostPaths(plan);
    if (options.uninstall) {
      await removeLeftoversOf(plan, options.dryRun ?? false);
      await uninstall(plan, options.dryRun ?? false);
      return 0;
    }
    if (options.wait) {
      const { watchAndReinstall } = await import("./install/watch.ts");
      return await watchAndReinstall({
        netconfSource: plan.netconf?.source,
        pass: (skip, done) => installOnce(plan, false, skip, done),
        report: (err) => (isExpected(err) ? err.message : String((err as Error)?.message ?? err)),
      });
    }
    await installOnce(plan, options.dryRun ?? false);
    return 0;
  } catch (err) {
    const msg = isExpected(err) ? err.message : String((err as Error)?.message ?? err);
    process.stderr.write(`ipamd install: ${msg}\n`);
    return 1;
  }
}
