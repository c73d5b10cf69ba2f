/**
 * Reservations from the command line: `ipamd reserve`, `ipamd unreserve` and
 * `ipamd reservations`. The CLI says who asks (user@host, as `--by` can override), which the
 * daemon records with the reservation and in the address's history.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { AdminPaths, ReservationsResponseSchema, ReserveResponseSchema, UnreserveResponseSchema } from "../protocol-admin.ts";
import { call, type Flags, out, query } from "./admin-io.ts";
import { formatTable } from "./table.ts";

/** "10.0.0.50" or "10.0.0.50-10.0.0.60" (an IPv6 span the same way). */
function spanOf(text: string): { first: string; last?: string } {
  const dash = text.indexOf("-");
  return dash < 0 ? { first: text } : { first: text.slice(0, dash), last: text.slice(dash + 1) };
}

async function asker(flags: Flags): Promise<string> {
  if (typeof flags.by === "string") return flags.by;
  const { hostname, userInfo } = await import("node:os");
  const user = process.env.SUDO_USER ?? process.env.USER ?? userInfo().username;
  return `${user}@${hostname()}`;
}

const strings = (flags: Flags, ...names: string[]) => Object.fromEntries(names.flatMap((n) => (typeof flags[n] === "string" ? [[n, flags[n]]] : [])));

export const TENANT_VERBS: Record<string, string[]> = {
  reserve: ["pool", "note", "by"],
  unreserve: ["pool", "space", "by"],
  reservations: ["pool", "space"],
};

export async function runTenantVerb(verb: string, flags: Flags, positionals: string[], json: (value: unknown) => void): Promise<number> {
  const usage = {
    reserve: "ADDRESS[-ADDRESS] --pool P [--note TEXT] [--by WHO]",
    unreserve: "ADDRESS[-ADDRESS] [--pool P | --space S] [--by WHO]",
    reservations: "[--pool P] [--space S] [--json]",
  }[verb]!;
  if (positionals.length !== (verb === "reservations" ? 0 : 1)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `usage: ipamd ${verb} ${usage}`);
  if (verb === "reserve") {
    if (typeof flags.pool !== "string") throw new IpamError(ErrorCode.InvalidNetworkConfig, `usage: ipamd reserve ${usage}`);
    const result = await call(flags, AdminPaths.reservations, { ...spanOf(positionals[0]!), ...strings(flags, "pool", "note"), by: await asker(flags) }, ReserveResponseSchema);
    if (flags.json) return json(result), 0;
    out(`reserved ${result.reserved.length} address${result.reserved.length === 1 ? "" : "es"} in pool ${flags.pool}: ${positionals[0]}\n`);
    return 0;
  }
  if (verb === "unreserve") {
    const result = await call(flags, AdminPaths.unreserve, { ...spanOf(positionals[0]!), ...strings(flags, "pool", "space"), by: await asker(flags) }, UnreserveResponseSchema);
    if (flags.json) return json(result), 0;
    out(`unreserved ${result.unreserved.length} address${result.unreserved.length === 1 ? "" : "es"}: ${result.unreserved.join(", ")}\n`);
    return 0;
  }
  const { reservations } = await call(flags, `${AdminPaths.reservations}${query(strings(flags, "pool", "space"))}`, undefined, ReservationsResponseSchema);
  if (flags.json) return json({ reservations }), 0;
  out(reservations.length ? formatTable(["IP", "POOL", "BY", "NOTE"], reservations.map((h) => [h.ip, h.pool, h.by, h.note])) : "no reservations\n");
  return 0;
}
