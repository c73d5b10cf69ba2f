/**
 * Lists of pools to choose from: `defaultPools` in the daemon's config and `pools` in a
 * netconf. Each element yields one address; an element that is a list is a fallback group,
 * tried in order. Here they are normalised to groups and checked against the pools defined.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import type { NamedPool } from "./named-pool.ts";

/** As the config and the netconf spell them: a name, or a fallback list of names. */
export type PoolChoice = string | string[];

/** The daemon's pools and its default choice groups: what a reload swaps at once. */
export interface PoolSetup {
  pools: Map<string, NamedPool>;
  /** `defaultPools`, each element as a group (a lone name is a group of one). */
  defaults: string[][];
}

export const groupsOf = (choices: readonly PoolChoice[]): string[][] => choices.map((c) => (typeof c === "string" ? [c] : [...c]));

/**
 * Groups checked against the pools: every name defined, and each group of one family (a
 * fallback from IPv4 to IPv6 would change what the pod gets, not where from). `where` names
 * the list in messages.
 */
export function choiceGroups(choices: readonly PoolChoice[], pools: ReadonlyMap<string, NamedPool>, where: string): string[][] {
  const groups = groupsOf(choices);
  for (const group of groups) {
    const families = new Set<number>();
    for (const name of group) {
      const pool = pools.get(name);
      if (!pool) throw new IpamError(ErrorCode.InvalidNetworkConfig, `${where}: unknown pool "${name}": defined are ${[...pools.keys()].join(", ") || "none"}`);
      families.add(pool.family);
    }
    if (families.size > 1) throw new IpamError(ErrorCode.InvalidNetworkConfig, `${where}: the fallback group ${JSON.stringify(group)} mixes IPv4 and IPv6 pools`);
  }
  return groups;
}
