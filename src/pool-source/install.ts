/** Installing the pools a PoolSource hands over (the daemon's and the controller's alike). */
import type { Engine } from "../engine/engine.ts";
import type { PoolSetup } from "../ipam/pool-choice.ts";

/**
 * A pool object whose pool would move to another space while its addresses are held is left
 * out (told), not allowed to keep every other change from being installed.
 */
export async function installObjectPools(engine: Engine, setup: PoolSetup, problems: string[], fromObjects: Set<string>): Promise<void> {
  for (const move of await engine.movedPools(setup)) {
    if (!fromObjects.has(move.pool)) continue;
    setup.pools.delete(move.pool);
    problems.push(move.message);
  }
  await engine.reconfigure(setup);
}
