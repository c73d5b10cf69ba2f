/**
 * Where the block cache (cache.ts) finds an allocation by what a lookup knows of it: its
 * attachment, node, container or pod, each key listing the places (block and address) of the
 * allocations under it.
 */

/** An allocation's place: the block's name and the address. */
export type Ref = string;
export const refOf = (name: string, ip: string): Ref => `${name}\0${ip}`;

/** The keys of the indexes an allocation is listed under. */
export function keysOf(r: { network: string; containerID: string; ifname: string; node: string; podNamespace?: string | null; podName?: string | null }) {
  return {
    attachment: `${r.network}\0${r.containerID}\0${r.ifname}`,
    node: r.node,
    container: r.containerID,
    pod: r.podNamespace ? `${r.podNamespace}\0${r.podName ?? ""}` : undefined,
  };
}

/** A ref's block name and address. */
export const placeOf = (ref: Ref): [name: string, ip: string] => {
  const at = ref.indexOf("\0");
  return [ref.slice(0, at), ref.slice(at + 1)];
};

/**
 * Refs by key. Most keys (an attachment, a container, a pod) list one allocation: that one is
 * kept as it is, and a Set only once a key has two (a Set per allocation was most of the
 * cache's memory after the allocations themselves).
 */
export class Index {
  private readonly map = new Map<string, Ref | Set<Ref>>();
  add(key: string | undefined, ref: Ref): void {
    if (key === undefined) return;
    const now = this.map.get(key);
    if (now === undefined || now === ref) this.map.set(key, ref);
    else if (typeof now === "string") this.map.set(key, new Set([now, ref]));
    else now.add(ref);
  }
  delete(key: string | undefined, ref: Ref): void {
    if (key === undefined) return;
    const now = this.map.get(key);
    if (now === ref) this.map.delete(key);
    else if (typeof now === "object" && now.delete(ref) && now.size === 1) this.map.set(key, now.values().next().value!);
  }
  get(key: string): Iterable<Ref> {
    const now = this.map.get(key);
    return now === undefined ? [] : typeof now === "string" ? [now] : now;
  }
}
