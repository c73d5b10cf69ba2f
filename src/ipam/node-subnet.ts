/**
 * Per-node subnets carved from a supernet (as the Infoblox CNI daemon's --network): each
 * node takes the lowest subnet of `nodeSubnetPrefix` bits that no other node holds. Pure:
 * the store makes the claim atomic (and cluster-wide, with a cluster store).
 */
import type { Cidr } from "./address.ts";
import { bitsOf, lastOf, networkOf } from "./address.ts";
import type { NodeSubnetSpec } from "./named-pool.ts";

/** The lowest subnet not in `claimed`, or null when the supernet is used up. O(claimed). */
export function nextFreeSubnet(spec: NodeSubnetSpec, claimed: bigint[]): bigint | null {
  const step = 1n << BigInt(bitsOf(spec.supernet.family) - spec.prefix);
  const taken = new Set(claimed);
  const last = lastOf(spec.supernet);
  for (let subnet = networkOf(spec.supernet); subnet <= last; subnet += step) {
    if (!taken.has(subnet)) return subnet;
  }
  return null;
}

/** Whether a claimed subnet still fits the (possibly reloaded) definition. */
export function subnetFits(spec: NodeSubnetSpec, subnet: Cidr): boolean {
  return (
    subnet.family === spec.supernet.family &&
    subnet.prefix === spec.prefix &&
    networkOf(subnet) === subnet.address &&
    subnet.address >= networkOf(spec.supernet) &&
    subnet.address <= lastOf(spec.supernet)
  );
}
