/**
 * Operators' calls: pools, allocations, an address's holder and history, release, reclaim
 * now (with a dry run), import, reload, and Prometheus metrics. Mutating calls are marked so
 * a listener that must stay read-only (the TCP admin listener without client certificates)
 * can refuse them.
 */
import { Hono } from "hono";
import { ErrorCode, IpamError } from "../errors.ts";
import { canonicalIp } from "../ipam/address.ts";
import { AdminGcRequestSchema, ALLOCATION_PAGE, HISTORY_PAGE, ImportRequestSchema, ReleaseRequestSchema, ReserveRequestSchema, UnreserveRequestSchema } from "../protocol-admin.ts";
import type { AllocationFilter, HistoryFilter, Hold } from "../store/store.ts";
import { spaceOf } from "../engine/pools.ts";
import type { AppOptions } from "./app.ts";
import { ConfigError } from "./config.ts";
import { readBody } from "./http-errors.ts";
import type { Engine } from "../engine/engine.ts";
import { afterAllocation, allocationToken, beforeEvent, historyToken } from "./page-token.ts";
import { poolReports } from "./pool-report.ts";
import type { ReadGate } from "./read-gate.ts";


const limitOf = (text: string | undefined, fallback: number, max: number): number => {
  const n = Number(text ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new IpamError(ErrorCode.InvalidNetworkConfig, `limit must be a positive integer, not "${text}"`);
  return Math.min(n, max);
};

/** "ns/name" → the pod filter; anything else is refused with a clear message. */
function podFilter(pod: string | undefined): Pick<AllocationFilter, "podNamespace" | "podName"> {
  if (pod === undefined) return {};
  const [namespace, name, ...rest] = pod.split("/");
  if (!namespace || !name || rest.length > 0) throw new IpamError(ErrorCode.InvalidNetworkConfig, `pod must be NAMESPACE/NAME, not "${pod}"`);
  return { podNamespace: namespace, podName: name };
}

function ipParam(text: string): string {
  const ip = canonicalIp(text);
  if (!ip) throw new IpamError(ErrorCode.InvalidNetworkConfig, `"${text}" is not an IP address`);
  return ip;
}

/**
 * The holds on an address (cooldown, parked for a pod, reserved), as the store has them, in
 * the configured pools' spaces: a shared store's holds made by other nodes included.
 */
async function holdsAt(engine: Engine, ip: string): Promise<Hold[]> {
  const spaces = [...new Set([...engine.registry.named.values()].map(spaceOf))];
  return (await Promise.all(spaces.map((space) => engine.store.holds(space)))).flat().filter((h) => h.ip === ip);
}

/** The admin API's reads: pools, allocations and history in pages, one address's holders. */
function readRoutes(engine: Engine, gate: ReadGate): Hono {
  const store = engine.store;
  const turn = gate.read();
  return new Hono()
    .get("/pools", turn, async (c) => c.json(await poolReports(engine, store)))
    .get("/allocations", turn, async (c) => {
      const q = c.req.query();
      const filter: AllocationFilter = {
        ...(q.pool ? { pool: q.pool } : {}),
        ...(q.node ? { node: q.node } : {}),
        ...(q.network ? { network: q.network } : {}),
        ...(q.container ? { containerID: q.container } : {}),
        ...(q.ip ? { ip: ipParam(q.ip) } : {}),
        ...podFilter(q.pod),
        ...(q.namespace && !q.pod ? { podNamespace: q.namespace } : {}),
        ...(q.after ? { after: afterAllocation(q.after) } : {}),
        limit: limitOf(q.limit, ALLOCATION_PAGE.default, ALLOCATION_PAGE.max),
      };
      // One more than the page: whether a next page exists, without an empty last one.
      const allocations = await store.allocations({ ...filter, limit: filter.limit! + 1 });
      const more = allocations.length > filter.limit! ? allocations.splice(filter.limit!) : [];
      return c.json({ allocations, ...(more.length ? { next: allocationToken(allocations[allocations.length - 1]!) } : {}) });
    })
    .get("/allocations/:ip", turn, async (c) => {
      const ip = ipParam(c.req.param("ip"));
      const [holders, holds, history] = await Promise.all([store.holders(ip), holdsAt(engine, ip), store.history({ ip, limit: limitOf(c.req.query("limit"), HISTORY_PAGE.default, HISTORY_PAGE.max) })]);
      return c.json({ ip, holders, holds, history });
    })
    .get("/reservations", turn, async (c) => {
      const q = c.req.query();
      return c.json({ reservations: await engine.reservations({ ...(q.pool ? { pool: q.pool } : {}), ...(q.space ? { space: q.space } : {}) }) });
    })
    .get("/history", turn, async (c) => {
      const q = c.req.query();
      const filter: HistoryFilter = {
        ...(q.ip ? { ip: ipParam(q.ip) } : {}),
        ...(q.container ? { containerID: q.container } : {}),
        ...podFilter(q.pod),
        ...(q.before ? { before: beforeEvent(q.before) } : {}),
        limit: limitOf(q.limit, HISTORY_PAGE.default, HISTORY_PAGE.max),
      };
      const events = await store.history({ ...filter, limit: filter.limit! + 1 });
      const more = events.length > filter.limit! ? events.splice(filter.limit!) : [];
      return c.json({ events, ...(more.length ? { next: historyToken(events[events.length - 1]!) } : {}) });
    });
}

/** The admin API's changes: release, reclaim now (a dry run reads only), import, reload. */
function changeRoutes(engine: Engine, options: AppOptions): Hono {
  return new Hono()
    .post("/allocations/:ip/release", async (c) => {
      options.requireMutation?.(c);
      const ip = ipParam(c.req.param("ip"));
      const body = await readBody(c, ReleaseRequestSchema);
      const result = await engine.releaseAddress(ip, body.cause ?? "released by an operator", { network: body.network, space: body.space });
      if (result.released.length === 0 && result.unbound === 0) {
        const reserved = (await engine.reservations({ space: body.space })).some((h) => h.ip === ip);
        throw new IpamError(ErrorCode.NotFound, reserved ? `${ip} is reserved, not allocated: ipamd unreserve ends a reservation` : `${ip} is not allocated, bound or cooling`);
      }
      return c.json(result);
    })
    .post("/reservations", async (c) => {
      options.requireMutation?.(c);
      return c.json(await engine.reserve(await readBody(c, ReserveRequestSchema)));
    })
    .post("/reservations/release", async (c) => {
      options.requireMutation?.(c);
      return c.json(await engine.unreserve(await readBody(c, UnreserveRequestSchema)));
    })
    .post("/gc", async (c) => {
      const body = await readBody(c, AdminGcRequestSchema);
      if (!body.dryRun) options.requireMutation?.(c);
      if (!options.reclaimer) throw new IpamError(ErrorCode.NotFound, "leak reclamation is not configured on this daemon");
      return c.json(await options.reclaimer.sweep(body.dryRun ?? false));
    })
    .post("/import", async (c) => {
      options.requireMutation?.(c);
      return c.json(await engine.importAllocations(await readBody(c, ImportRequestSchema)));
    })
    .post("/reload", async (c) => {
      options.requireMutation?.(c);
      if (!options.reload) throw new IpamError(ErrorCode.NotFound, "this daemon has no config file to reload");
      try {
        return c.json(await options.reload());
      } catch (err) {
        if (err instanceof ConfigError) throw new IpamError(ErrorCode.InvalidNetworkConfig, err.message);
        throw err;
      }
    });
}

export function adminRoutes(engine: Engine, options: AppOptions, gate: ReadGate): Hono {
  return new Hono().route("/", readRoutes(engine, gate)).route("/", changeRoutes(engine, options));
}
