/**
 * Node subnets of supernet pools on the Kubernetes-API store: one IPAMNodeSubnet per claimed
 * subnet, named after the pool and the subnet, so creating it is the claim and no two nodes can
 * hold one subnet. A node moving to another subnet creates the new claim before it lets the
 * old one go; one left behind by a crash in between is let go at the next claim.
 */
import { AlreadyExistsError, NotFoundError } from "../../kube/errors.ts";
import { IPAMNodeSubnets } from "../../kube/resources.ts";
import type { SubnetChooser } from "../store.ts";
import type { StoreApi } from "./api.ts";
import { FIELD_MANAGER } from "./api.ts";
import { subnetName } from "./names.ts";

export class NodeSubnets {
  constructor(private readonly api: StoreApi) {}

  private async claims(pool: string) {
    return (await this.api.list(IPAMNodeSubnets)).items.filter((o) => o.spec.pool === pool);
  }

  async nodeSubnets(pool: string): Promise<{ node: string; subnet: string }[]> {
    return (await this.claims(pool)).map((o) => ({ node: o.spec.node, subnet: o.spec.subnet }));
  }

  async claim(pool: string, node: string, choose: SubnetChooser): Promise<string | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const claims = await this.claims(pool);
      const mine = claims.filter((c) => c.spec.node === node);
      const chosen = choose(claims.filter((c) => c.spec.node !== node).map((c) => c.spec.subnet), mine[0]?.spec.subnet ?? null);
      if (chosen !== null && !mine.some((c) => c.spec.subnet === chosen)) {
        try {
          const spec = { pool, subnet: chosen, node };
          await this.api.call("create", IPAMNodeSubnets, () => this.api.client.create(IPAMNodeSubnets, { metadata: { name: subnetName(pool, chosen), namespace: this.api.namespace }, spec }, { fieldManager: FIELD_MANAGER }));
        } catch (err) {
          if (err instanceof AlreadyExistsError) continue; // another node took it between our read and our write
          throw err;
        }
      }
      for (const old of mine) {
        if (old.spec.subnet === chosen) continue;
        await this.api.delete(IPAMNodeSubnets, old.metadata.name!, { uid: old.metadata.uid ?? undefined }).catch((err) => {
          if (!(err instanceof NotFoundError)) throw err;
        });
      }
      return chosen;
    }
    throw new Error(`could not claim a subnet of pool ${pool} for node ${node}: too much contention`);
  }
}
