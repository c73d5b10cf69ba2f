/**
 * Operators' reservations (see plan-reserve.ts): reserve a range of a named pool, end
 * reservations, list them. The store is asked what is reserved (another daemon may have
 * reserved on a shared store); memory learns what a refused commit says is taken.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { parseIp } from "../ipam/address.ts";
import { SPACE_NAME } from "../ipam/pool-scope.ts";
import { ConflictError, type Hold } from "../store/store.ts";
import type { Engine } from "./engine.ts";
import { MAX_RESERVATION, planReserve, planUnreserve } from "./plan-reserve.ts";
import { namedSpace, spaceOf } from "./pools.ts";

export interface ReserveRequest {
  pool: string;
  first: string;
  last?: string;
  note?: string;
  by?: string;
}

export interface UnreserveRequest {
  first: string;
  last?: string;
  /** Where the addresses are reserved: a pool's space, or a space by name; else wherever they are. */
  pool?: string;
  space?: string;
  by?: string;
}

function poolOf(engine: Engine, name: string) {
  const pool = engine.registry.named.get(name);
  if (!pool) throw new IpamError(ErrorCode.NotFound, `no pool named ${name}: the daemon's config defines ${[...engine.registry.named.keys()].join(", ") || "none"}`);
  return pool;
}

/** The span first..last (last defaults to first), of one family. */
function span(first: string, last: string | undefined) {
  const a = parseIp(first);
  const b = parseIp(last ?? first);
  if (!a || !b) throw new IpamError(ErrorCode.InvalidNetworkConfig, `"${!a ? first : last}" is not an IP address`);
  if (a.family !== b.family) throw new IpamError(ErrorCode.InvalidNetworkConfig, `${first}-${last} mixes IPv4 and IPv6`);
  return { family: a.family, first: a.value, last: b.value };
}

export async function reserve(engine: Engine, req: ReserveRequest): Promise<{ reserved: string[] }> {
  const pool = poolOf(engine, req.pool);
  const rangeSet = engine.registry.rangeSetOf(pool);
  if (!rangeSet) throw new IpamError(ErrorCode.PoolExhausted, `pool ${pool.name} has no subnet on node ${engine.node} to reserve in`);
  const { family, first, last } = span(req.first, req.last);
  if (family !== pool.family) throw new IpamError(ErrorCode.AddressNotInPool, `pool ${pool.name} is IPv${pool.family}; ${req.first} is not`);
  const input = { pool: pool.name, space: spaceOf(pool), rangeSet, family, first, last, note: req.note ?? "", by: req.by ?? "an operator" };
  // The whole span is judged first: refused whole, naming what is taken.
  planReserve(engine.state, input);
  const made: Hold[] = [];
  try {
    // Committed in pieces a commit can carry (etcd caps a transaction's operations), each
    // planned and applied in one turn; a piece refused undoes the pieces before it.
    const piece = BigInt(Math.max(1, Math.min(MAX_RESERVATION, engine.store.commitCapacity)));
    for (let from = first; from <= last; from += piece) {
      const plan = planReserve(engine.state, { ...input, first: from, last: from + piece - 1n < last ? from + piece - 1n : last });
      await engine.applier.apply(plan);
      made.push(...plan.holds);
    }
  } catch (err) {
    await unreserveInPieces(engine, made, `${input.by} (a reservation refused part-way, undone)`);
    if (err instanceof ConflictError) for (const t of err.taken) engine.state.learn(t.space, t.family, t.ip);
    if (!(err instanceof ConflictError) && !(err instanceof IpamError && err.code === ErrorCode.AddressInUse)) throw err;
    // Another daemon took some of them meanwhile: memory learns, and nothing stays reserved.
    const taken = err instanceof ConflictError ? err.taken.map((t) => t.ip).join(", ") : (err as Error).message;
    throw new IpamError(ErrorCode.AddressInUse, `${taken || "some of the addresses"} became allocated or held meanwhile; nothing was reserved`);
  }
  return { reserved: made.map((h) => h.ip) };
}

/** The spaces of the configured pools (or of one pool, or one space by name). */
function spacesFor(engine: Engine, req: { pool?: string; space?: string }): string[] {
  if (req.pool !== undefined) return [spaceOf(poolOf(engine, req.pool))];
  if (req.space !== undefined) {
    if (!SPACE_NAME.test(req.space)) throw new IpamError(ErrorCode.InvalidNetworkConfig, `"${req.space}" is not a space name`);
    return [namedSpace(4, req.space), namedSpace(6, req.space)];
  }
  return [...new Set([...engine.registry.named.values()].map(spaceOf))];
}

/** Reservations as the store has them, of the configured pools' spaces (or one pool's). */
export async function reservations(engine: Engine, filter: { pool?: string; space?: string } = {}): Promise<Hold[]> {
  const holds = (await Promise.all(spacesFor(engine, filter).map((space) => engine.store.holds(space)))).flat();
  return holds.filter((h) => h.kind === "reserved" && (filter.pool === undefined || h.pool === filter.pool));
}

export async function unreserve(engine: Engine, req: UnreserveRequest): Promise<{ unreserved: string[] }> {
  const { family, first, last } = span(req.first, req.last);
  const found = (await reservations(engine, req)).filter((h) => {
    const ip = parseIp(h.ip);
    return ip !== null && ip.family === family && ip.value >= first && ip.value <= last;
  });
  const spaces = [...new Set(found.map((h) => h.space))];
  if (spaces.length > 1) throw new IpamError(ErrorCode.AddressInUse, `reserved in ${spaces.length} address spaces (${spaces.join(", ")}); pick one with --space NAME or --pool NAME`);
  if (found.length === 0) throw new IpamError(ErrorCode.NotFound, `nothing is reserved at ${req.first}${req.last ? `-${req.last}` : ""}`);
  await unreserveInPieces(engine, found, req.by ?? "an operator");
  return { unreserved: found.map((h) => h.ip) };
}

/** Ends reservations in pieces a commit can carry (see reserve). */
async function unreserveInPieces(engine: Engine, holds: Hold[], by: string): Promise<void> {
  const piece = Math.max(1, Math.min(MAX_RESERVATION, engine.store.commitCapacity));
  for (let i = 0; i < holds.length; i += piece) await engine.applier.apply(planUnreserve(engine.state, holds.slice(i, i + piece), by));
}
