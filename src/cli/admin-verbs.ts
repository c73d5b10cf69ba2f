/**
 * The admin verbs: they talk to the daemon over its socket (`--socket` to choose) and print
 * an aligned table, or JSON with `--json`. An error is one line on stderr and exit 1.
 */
import type { BaseIssue, BaseSchema, InferOutput } from "valibot";
import { callDaemon } from "../cni/client.ts";
import { ErrorCode, IpamError } from "../errors.ts";
import { DEFAULT_SOCKET } from "../protocol.ts";
import { AddressResponseSchema, Admin, ALLOCATION_PAGE, AdminPaths, type Allocation, AllocationsResponseSchema, type HistoryEventBody, HistoryResponseSchema, ImportResponseSchema, PoolsResponseSchema, ReleaseResponseSchema, ReloadResponseSchema, SweepResultSchema } from "../protocol-admin.ts";
import { age, formatTable, shortId, tableStream } from "./table.ts";

export { ADMIN_USAGE } from "./admin-usage.ts";

/** Admin calls may walk the whole store (gc, import): give them longer than the plugin's 2.5 s. */
const ADMIN_TIMEOUT_MS = 120_000;

type Flags = Record<string, string | boolean | undefined>;
type Schema = BaseSchema<unknown, unknown, BaseIssue<unknown>>;

/**
 * Output, in order, each piece written before the next: a verb's last lines must not be lost
 * when the process exits with a pipe still full (a streamed list is many pieces). Awaited
 * through `written` before a verb returns.
 */
let written: Promise<unknown> = Promise.resolve();
const out = (text: string): void => {
  written = written.then(() => Bun.write(Bun.stdout, text));
};

function call<S extends Schema>(flags: Flags, path: string, body: unknown, schema: S): Promise<InferOutput<S>> {
  return callDaemon((flags.socket as string | undefined) ?? DEFAULT_SOCKET, path, body, schema, ADMIN_TIMEOUT_MS);
}

const query = (params: Record<string, string | boolean | undefined>) => {
  const entries = Object.entries(params).filter((e): e is [string, string] => typeof e[1] === "string");
  return entries.length ? `?${new URLSearchParams(entries)}` : "";
};

const ALLOCATION_HEADERS = ["IP", "NETWORK", "POOL", "CONTAINER", "IFNAME", "POD", "NODE", "AGE"];
const allocationRow = (a: Allocation) => [`${a.ip}/${a.prefix}`, a.network, a.pool ?? "(netconf ranges)", shortId(a.containerID), a.ifname, a.podName ? `${a.podNamespace}/${a.podName}` : null, a.node, age(a.createdAt)];

function allocationTable(rows: Allocation[]): string {
  return formatTable(ALLOCATION_HEADERS, rows.map(allocationRow));
}

/**
 * `ipamd allocations`: follows the daemon's pages and prints each as it arrives (rows as a
 * table, or one JSON document written piece by piece), up to `limit` in all.
 */
async function streamAllocations(flags: Flags, filter: Record<string, string | boolean | undefined>, limit: number): Promise<void> {
  const table = tableStream(ALLOCATION_HEADERS, out);
  let token: string | undefined;
  let shown = 0;
  if (flags.json) out('{"allocations":[');
  do {
    const page = Math.min(ALLOCATION_PAGE.max, limit - shown);
    const q = query({ ...filter, limit: String(page), after: token });
    const { allocations, next } = await call(flags, `${AdminPaths.allocations}${q}`, undefined, AllocationsResponseSchema);
    if (flags.json) out(allocations.map((a, i) => `${shown + i > 0 ? "," : ""}\n${JSON.stringify(a)}`).join(""));
    else table(allocations.map(allocationRow));
    shown += allocations.length;
    token = next;
  } while (token && shown < limit);
  if (flags.json) out("\n]}\n");
  else if (shown === 0) out("no allocations\n");
}

function historyTable(events: HistoryEventBody[]): string {
  return formatTable(
    ["TIME", "EVENT", "IP", "CONTAINER", "IFNAME", "POD", "CAUSE"],
    events.map((e) => [new Date(e.at).toISOString(), e.kind, e.ip, shortId(e.containerID), e.ifname, e.podName ? `${e.podNamespace}/${e.podName}` : null, e.cause]),
  );
}

async function show(flags: Flags, what: string): Promise<void> {
  const { canonicalIp } = await import("../ipam/address.ts");
  const ip = canonicalIp(what);
  let holders: Allocation[];
  let history: HistoryEventBody[];
  if (ip) {
    ({ holders, history } = await call(flags, `${AdminPaths.allocations}/${encodeURIComponent(ip)}`, undefined, AddressResponseSchema));
  } else {
    const filter = what.includes("/") ? { pod: what } : { container: what };
    holders = (await call(flags, `${AdminPaths.allocations}${query(filter)}`, undefined, AllocationsResponseSchema)).allocations;
    history = (await call(flags, `${AdminPaths.history}${query(filter)}`, undefined, HistoryResponseSchema)).events;
  }
  if (flags.json) return out(`${JSON.stringify({ query: what, holders, history }, null, 2)}\n`);
  out(holders.length ? allocationTable(holders) : `${what}: held by nobody now\n`);
  out(history.length ? `\nHistory (newest first):\n${historyTable(history)}` : "\nNo history.\n");
}

async function importHostLocal(flags: Flags, positionals: string[]): Promise<void> {
  const [kind, dir] = positionals;
  if (kind !== "host-local" || !dir) throw new IpamError(ErrorCode.InvalidNetworkConfig, "usage: ipamd import host-local DIR [--network NAME] [--conf NETCONF]");
  const { basename } = await import("node:path");
  const { readHostLocalDir } = await import("./import-host-local.ts");
  const network = (flags.network as string | undefined) ?? basename(dir.replace(/\/+$/, ""));
  let ranges;
  if (typeof flags.conf === "string") {
    const { rangesOfNetconfFile } = await import("./netconf-file.ts");
    ranges = await rangesOfNetconfFile(flags.conf);
  }
  const { entries, cursors, skipped } = await readHostLocalDir(dir);
  const total = { imported: 0, unchanged: 0, conflicts: [] as InferOutput<typeof ImportResponseSchema>["conflicts"] };
  const BATCH = 5000;
  for (let i = 0; i === 0 || i < entries.length; i += BATCH) {
    const batch = entries.slice(i, i + BATCH);
    const last = i + BATCH >= entries.length;
    const result = await call(flags, AdminPaths.import, { network, ...(ranges ? { ranges } : {}), entries: batch, ...(last ? { cursors } : {}) }, ImportResponseSchema);
    total.imported += result.imported;
    total.unchanged += result.unchanged;
    total.conflicts.push(...result.conflicts);
    if (entries.length > BATCH) process.stderr.write(`imported ${Math.min(i + BATCH, entries.length)}/${entries.length}\n`);
  }
  if (flags.json) return out(`${JSON.stringify({ network, ...total, skipped }, null, 2)}\n`);
  out(`network ${network}: ${total.imported} imported, ${total.unchanged} already there, ${total.conflicts.length} conflicts${skipped.length ? `, ${skipped.length} unreadable files skipped` : ""}\n`);
  if (total.conflicts.length) out(formatTable(["IP", "HOST-LOCAL CONTAINER", "HELD BY"], total.conflicts.map((c) => [c.ip, shortId(c.containerID), c.heldBy])));
  if (total.conflicts.length) throw new IpamError(ErrorCode.AddressInUse, `${total.conflicts.length} addresses of ${dir} are held by other containers in ipamd`);
}

/** Runs an admin verb; null when the verb is not one of these. */
export async function runAdminVerb(verb: string, args: string[]): Promise<number | null> {
  const options: Record<string, { type: "string" | "boolean" }> = { socket: { type: "string" }, json: { type: "boolean" } };
  const extra: Record<string, string[]> = {
    pools: [],
    allocations: ["pool", "node", "pod", "network", "limit"],
    show: [],
    release: ["yes:b", "cause", "network"],
    gc: ["dry-run:b"],
    import: ["network", "conf"],
    reload: [],
  };
  if (!(verb in extra)) return null;
  for (const name of extra[verb]!) {
    const [key, kind] = name.split(":");
    options[key!] = { type: kind === "b" ? "boolean" : "string" };
  }
  const { parseArgs } = await import("node:util");
  const { values: flags, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  const need = (n: number, usage: string) => {
    if (positionals.length !== n) throw new IpamError(ErrorCode.InvalidNetworkConfig, `usage: ipamd ${verb} ${usage}`);
  };
  const json = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);
  try {
    return await runVerb(verb, flags, positionals, need, json);
  } finally {
    await written;
  }
}

/** `ipamd pools`: named pools, then the netconfs' inline range sets (no named pool: each its network's space). */
async function pools(flags: Flags, json: (value: unknown) => void): Promise<void> {
  const reports = await call(flags, Admin.pools, undefined, PoolsResponseSchema);
  if (flags.json) return json(reports);
  const percent = (u: number) => `${u.toFixed(1)}%`;
  out(
    formatTable(
      ["POOL", "KIND", "SIZE", "USED", "FREE", "USE%", "HELD", "NODE SUBNET", "ORPHANS"],
      reports.pools.map((p) => [p.name, p.kind, p.size, p.used, p.free, percent(p.utilization), p.cooling + p.stickyParked || null, p.nodeSubnet, p.orphans.count || null]),
    ),
  );
  if (reports.rangeSets.length === 0) return;
  out(`\nInline range sets (netconf ranges):\n`);
  out(formatTable(["NETWORK", "RANGE SET", "SIZE", "USED", "FREE", "USE%"], reports.rangeSets.map((r) => [r.network, r.rangeSet, r.size, r.used, r.free, percent(r.utilization)])));
}

async function runVerb(verb: string, flags: Flags, positionals: string[], need: (n: number, usage: string) => void, json: (value: unknown) => void): Promise<number | null> {
  switch (verb) {
    case "pools":
      need(0, "[--json]");
      await pools(flags, json);
      return 0;
    case "allocations": {
      need(0, "[--pool P] [--node N] [--pod NS/NAME] [--network N] [--limit N] [--json]");
      const limit = flags.limit === undefined ? Number.POSITIVE_INFINITY : Number(flags.limit);
      if (!(limit >= 1)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--limit must be a positive number, not "${flags.limit}"`);
      await streamAllocations(flags, { pool: flags.pool, node: flags.node, pod: flags.pod, network: flags.network }, limit);
      return 0;
    }
    case "show":
      need(1, "IP|CONTAINER|NS/POD [--json]");
      await show(flags, positionals[0]!);
      return 0;
    case "release": {
      need(1, "IP --yes [--network NAME]");
      if (!flags.yes) throw new IpamError(ErrorCode.InvalidNetworkConfig, `refusing to release ${positionals[0]} without --yes (a pod may still use it)`);
      const body = { confirm: true, ...(typeof flags.cause === "string" ? { cause: flags.cause } : {}), ...(typeof flags.network === "string" ? { network: flags.network } : {}) };
      const result = await call(flags, `${AdminPaths.allocations}/${encodeURIComponent(positionals[0]!)}/release`, body, ReleaseResponseSchema);
      if (flags.json) return json(result), 0;
      const holders = result.released.map((r) => `${shortId(r.containerID)}/${r.ifname}`).join(", ");
      out(`released ${positionals[0]}${holders ? ` from ${holders}` : ""}${result.unbound ? ` (${result.unbound} sticky binding or cooldown dropped)` : ""}\n`);
      return 0;
    }
    case "gc": {
      need(0, "[--dry-run] [--json]");
      const result = await call(flags, AdminPaths.gc, { dryRun: Boolean(flags["dry-run"]) }, SweepResultSchema);
      if (flags.json) return json(result), 0;
      const verbWord = result.dryRun ? "would reclaim" : "reclaimed";
      out(`${verbWord} ${result.reclaimed.length} addresses; ${result.pending} more wait for their grace period\n`);
      if (result.reclaimed.length) out(formatTable(["IP", "NETWORK", "CONTAINER", "IFNAME", "WHY"], result.reclaimed.map((r) => [r.ip, r.network, shortId(r.containerID), r.ifname, r.reason])));
      return 0;
    }
    case "import":
      await importHostLocal(flags, positionals);
      return 0;
    case "reload": {
      need(0, "");
      const { pools } = await call(flags, Admin.reload, {}, ReloadResponseSchema);
      out(`reloaded: ${pools.length} pools (${pools.join(", ") || "none"})\n`);
      return 0;
    }
  }
  return null;
}
