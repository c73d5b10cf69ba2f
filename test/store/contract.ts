/**
 * The Store contract (DESIGN rule 3): one suite every backend must pass, covering every change
 * operation the engine emits and every question it and the operators ask. A backend's test
 * file calls storeContract() with a factory that opens a fresh store and one that reopens the
 * same data, as a restarted daemon would. The parts are in test/store/contract/.
 */
import { describe } from "bun:test";
import { allocationContract } from "./contract/allocations.ts";
import { clusterContract } from "./contract/cluster.ts";
import { historyContract } from "./contract/history.ts";
import { holdContract } from "./contract/holds.ts";
import { readContract } from "./contract/reads.ts";
import { tenantContract } from "./contract/tenants.ts";
import type { ContractTarget } from "./contract/support.ts";

export { type ContractTarget, record } from "./contract/support.ts";

export function storeContract(name: string, target: ContractTarget): void {
  describe(`Store contract: ${name}`, () => {
    allocationContract(target);
    holdContract(target);
    readContract(target);
    historyContract(target);
    clusterContract(target);
    tenantContract(target);
  });
}
