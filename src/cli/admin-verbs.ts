/**
 * The admin verbs: they talk to the daemon over its socket (`--socket` to choose) and print
 * an aligned table, or JSON with `--json`. An error is one line on stderr and exit 1.
 */
import type { InferOutput } from "valibot";
import { ErrorCode, IpamError } from "../errors.ts";
import { call, type Flags, flushed, out, query } from "./admin-io.ts";
import { AddressResponseSchema, Admin, ALLOCATION_PAGE, AdminPaths, type Allocation, AllocationsResponseSchema, type HistoryEventBody, HistoryResponseSchema, ImportResponseSchema, PoolsResponseSchema, ReleaseResponseSchema, ReloadResponseSchema, SweepResultSchema } from "../protocol-admin.ts";
import { poolsView } from "./pools-view.ts";
import { runTenantVerb, TENANT_VERBS } from "./tenant-verbs.ts";
import type { Hold } from "../store/records.ts";
import { age, formatTable, shortId, tableStream } from "./table.ts";

export { ADMIN_USAGE } from "./admin-usage.ts";

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

/** A hold's row: reserved (by whom, why), cooling (until when) or parked for a sticky pod. */
const holdRow = (h: Hold) => [h.ip, h.kind === "sticky" ? "parked" : h.kind, h.pool, h.kind === "reserved" ? h.by : h.pod, h.until === null ? null : new Date(h.until).toISOString(), h.note];

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
  let holds: Hold[] = [];
  if (ip) {
    ({ holders, holds, history } = await call(flags, `${AdminPaths.allocations}/${encodeURIComponent(ip)}`, undefined, AddressResponseSchema));
  } else {
    const filter = what.includes("/") ? { pod: what } : { container: what };
    holders = (await call(flags, `${AdminPaths.allocations}${query(filter)}`, undefined, AllocationsResponseSchema)).allocations;
    history = (await call(flags, `${AdminPaths.history}${query(filter)}`, undefined, HistoryResponseSchema)).events;
  }
  if (flags.json) return out(`${JSON.stringify({ query: what, holders, holds, history }, null, 2)}\n`);
  out(holders.length ? allocationTable(holders) : holds.length ? "" : `${what}: held by nobody now\n`);
  if (holds.length) out(`${holders.length ? "\n" : ""}${formatTable(["IP", "HELD AS", "POOL", "FOR", "UNTIL", "NOTE"], holds.map(holdRow))}`);
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
    allocations: ["pool", "node", "pod", "namespace", "network", "limit"],
    show: [],
    release: ["yes:b", "cause", "network", "space"],
    ...TENANT_VERBS,
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
    await flushed();
  }
}

/** `ipamd pools`: named pools, whom they serve, then the netconfs' inline range sets. */
async function pools(flags: Flags, json: (value: unknown) => void): Promise<void> {
  const reports = await call(flags, Admin.pools, undefined, PoolsResponseSchema);
  if (flags.json) return json(reports);
  out(poolsView(reports));
}

async function runVerb(verb: string, flags: Flags, positionals: string[], need: (n: number, usage: string) => void, json: (value: unknown) => void): Promise<number | null> {
  switch (verb) {
    case "pools":
      need(0, "[--json]");
      await pools(flags, json);
      return 0;
    case "allocations": {
      need(0, "[--pool P] [--node N] [--pod NS/NAME | --namespace NS] [--network N] [--limit N] [--json]");
      const limit = flags.limit === undefined ? Number.POSITIVE_INFINITY : Number(flags.limit);
      if (!(limit >= 1)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--limit must be a positive number, not "${flags.limit}"`);
      await streamAllocations(flags, { pool: flags.pool, node: flags.node, pod: flags.pod, namespace: flags.namespace, network: flags.network }, limit);
      return 0;
    }
    case "reserve":
    case "unreserve":
    case "reservations":
      return runTenantVerb(verb, flags, positionals, json);
    case "show":
      need(1, "IP|CONTAINER|NS/POD [--json]");
      await show(flags, positionals[0]!);
      return 0;
    case "release": {
      need(1, "IP --yes [--network NAME | --space NAME]");
      if (!flags.yes) throw new IpamError(ErrorCode.InvalidNetworkConfig, `refusing to release ${positionals[0]} without --yes (a pod may still use it)`);
      const body = { confirm: true, ...Object.fromEntries(["cause", "network", "space"].flatMap((k) => (typeof flags[k] === "string" ? [[k, flags[k]]] : []))) };
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
