/** What every part of the Store contract shares: the backend under test, records, and readers. */
import type { AllocationFilter, AllocationRecord, Hold, Store } from "../../../src/store/store.ts";

export interface ContractTarget {
  /** A new, empty store. */
  open(): Promise<Store>;
  /** The same data as `store`, opened again after it was closed. */
  reopen(store: Store): Promise<Store>;
}

/**
 * A target whose stores are opened on a fresh place by `place()`, each with its own local
 * database kept across a reopen (the block store's history and cursors): `open(place, db)`
 * opens one there, first and after a close alike.
 */
export function reopenableTarget<P>(place: () => Promise<P>, open: (place: P, db: string) => Promise<Store>, db: () => string): ContractTarget {
  const reopening = new WeakMap<Store, () => Promise<Store>>();
  const remember = (store: Store, again: () => Promise<Store>) => {
    reopening.set(store, async () => remember(await again(), again));
    return store;
  };
  return {
    async open() {
      const [where, file] = [await place(), db()];
      return remember(await open(where, file), () => open(where, file));
    },
    async reopen(store) {
      await store.close();
      return reopening.get(store)!();
    },
  };
}

export const RANGE_SET = "10.0.0.0/24[10.0.0.1-10.0.0.254 gw 10.0.0.1]";

export function record(ip: string, containerID: string, more: Partial<AllocationRecord> = {}): AllocationRecord {
  return {
    space: more.network ?? "net1",
    network: "net1",
    ip,
    family: ip.includes(":") ? 6 : 4,
    prefix: ip.includes(":") ? 64 : 24,
    gateway: ip.includes(":") ? "fd00::1" : "10.0.0.1",
    pool: null,
    rangeSet: RANGE_SET,
    containerID,
    ifname: "eth0",
    netns: `/var/run/netns/${containerID}`,
    podNamespace: "default",
    podName: `pod-${containerID}`,
    podUid: null,
    node: "node-a",
    createdAt: 1_700_000_000_000,
    static: false,
    ...more,
  };
}

export const cooling = (ip: string, until = 1_700_000_060_000, space = "net1"): Hold => ({ space, family: ip.includes(":") ? 6 : 4, ip, kind: "cooling", until, pod: null });
export const sticky = (ip: string, pod: string, space = "net1"): Hold => ({ space, family: ip.includes(":") ? 6 : 4, ip, kind: "sticky", until: null, pod });

/** Every address the store keeps from being handed out, as "space/family/ip". */
export async function taken(store: Store): Promise<string[]> {
  const out: string[] = [];
  await store.forEachTaken((space, family, ip) => out.push(`${space}/${family}/${ip}`));
  return out.sort();
}

/** The same with each address's kind: "… allocated" or "… held". */
export async function takenWithKind(store: Store, space?: string): Promise<string[]> {
  const out: string[] = [];
  await store.forEachTaken((s, family, ip, held) => out.push(`${s}/${family}/${ip} ${held ? "held" : "allocated"}`), space);
  return out.sort();
}

/** Every page of a list, following `after` from the last of each page. */
export async function allPages(store: Store, filter: AllocationFilter, size: number): Promise<AllocationRecord[][]> {
  const pages: AllocationRecord[][] = [];
  let after: AllocationFilter["after"];
  for (;;) {
    const page = await store.allocations({ ...filter, limit: size, ...(after ? { after } : {}) });
    if (page.length === 0) return pages;
    pages.push(page);
    after = { space: page[page.length - 1]!.space, ip: page[page.length - 1]!.ip };
  }
}

/** A commit's failure, or null when it succeeded. */
export const failureOf = (commit: Promise<void>): Promise<unknown> => commit.then(() => null, (err: unknown) => err);
