/**
 * What a reload (or a start with a changed config) may not do: let addresses still held in one
 * named space be handed out again in another. Pools of two spaces may overlap by design, but
 * a pool moved to another space (or its addresses given to a pool of another space) leaves its
 * allocations behind in the old space, where nothing covers them any more — and the new
 * space would hand them out again while they are in use. Such a setup is refused.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { formatIp } from "../ipam/address.ts";
import { footprint } from "../ipam/named-pool.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";
import type { AddressState } from "./state.ts";
import type { Engine } from "./engine.ts";
import { spaceName, spaceOf } from "./pools.ts";

/** The first address of [lo, hi] taken in `taken` and covered by none of `covers`, or null. */
function uncovered(taken: Iterable<[bigint, bigint]>, lo: bigint, hi: bigint, covers: [bigint, bigint][]): bigint | null {
  for (const [tlo, thi] of taken) {
    if (thi < lo || tlo > hi) continue;
    for (let from = tlo > lo ? tlo : lo; from <= (thi < hi ? thi : hi); ) {
      const cover = covers.find(([clo, chi]) => from >= clo && from <= chi);
      if (!cover) return from;
      from = cover[1] + 1n;
    }
  }
  return null;
}

/** Every pool of the setup that would hand out an address still held in another named space, and why. */
export function spaceMoves(state: AddressState, setup: PoolSetup): { pool: string; message: string }[] {
  const pools = [...setup.pools.values()];
  const moves: { pool: string; message: string }[] = [];
  for (const { space, family, taken } of state.spaces()) {
    if (!space.startsWith("@")) continue;
    const covers = pools.filter((p) => p.family === family && spaceOf(p) === space).flatMap(footprint);
    for (const pool of pools) {
      if (pool.family !== family || spaceOf(pool) === space) continue;
      for (const [lo, hi] of footprint(pool)) {
        const stray = uncovered(taken.extents(), lo, hi, covers);
        if (stray === null) continue;
        moves.push({
          pool: pool.name,
          message: `pool ${pool.name} (space ${pool.scope.space}) would hand out ${formatIp(stray, family)}, still held in space ${spaceName(space)} where no pool covers it any more: release those addresses first, or keep the pool in its space`,
        });
        break;
      }
    }
  }
  return moves;
}

export function refuseSpaceMoves(state: AddressState, setup: PoolSetup): void {
  const [move] = spaceMoves(state, setup);
  if (move) throw new IpamError(ErrorCode.InvalidNetworkConfig, move.message);
}

/**
 * Where memory may lag the store (other daemons write it), the named spaces are read again
 * before a question about whole spaces is answered.
 */
export async function refreshNamedSpaces(engine: Engine): Promise<void> {
  if (!engine.sharing.memoryMayLag) return;
  const spaces = new Set([...engine.state.spaces()].map((s) => s.space).filter((s) => s.startsWith("@")));
  for (const pool of engine.registry.named.values()) spaces.add(spaceOf(pool));
  for (const space of spaces) await engine.resync(space);
}
