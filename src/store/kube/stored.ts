/**
 * Records as the Kubernetes-API store keeps them inside a block and back: what the block and
 * the entry's key say (space, address, family) is left out, and so is every null field, so a
 * block — sent whole to every daemon on each write — stays small. Both directions are exact:
 * a record read back equals the one written.
 */
import type { Family } from "../../ipam/address.ts";
import type { StoredAllocation, StoredBinding, StoredHold } from "../../kube/schemas/store.ts";
import type { AllocationRecord, Binding, Hold } from "../records.ts";

export const familyOfIp = (ip: string): Family => (ip.includes(":") ? 6 : 4);

/** Sets `key` on `out` unless the value is null (the stored form's absent field). */
function put<T extends object, K extends keyof T>(out: T, key: K, value: T[K] | null): void {
  if (value !== null && value !== undefined) out[key] = value;
}

export function storedAllocation(r: AllocationRecord): StoredAllocation {
  const out: StoredAllocation = { network: r.network, containerID: r.containerID, ifname: r.ifname, node: r.node, createdAt: r.createdAt, prefix: r.prefix };
  put(out, "netns", r.netns);
  put(out, "podNamespace", r.podNamespace);
  put(out, "podName", r.podName);
  put(out, "podUid", r.podUid);
  if (r.static) out.static = true;
  put(out, "gateway", r.gateway);
  put(out, "pool", r.pool);
  put(out, "rangeSet", r.rangeSet);
  return out;
}

export function allocationOf(space: string, ip: string, s: StoredAllocation): AllocationRecord {
  return {
    space,
    network: s.network,
    ip,
    family: familyOfIp(ip),
    prefix: s.prefix,
    gateway: s.gateway ?? null,
    pool: s.pool ?? null,
    rangeSet: s.rangeSet ?? null,
    containerID: s.containerID,
    ifname: s.ifname,
    netns: s.netns ?? null,
    podNamespace: s.podNamespace ?? null,
    podName: s.podName ?? null,
    podUid: s.podUid ?? null,
    node: s.node,
    createdAt: s.createdAt,
    static: s.static ?? false,
  };
}

/** Whether two stored allocations are the same allocation, field by field (what a release compares). */
export function sameAllocation(a: StoredAllocation, b: StoredAllocation): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof StoredAllocation>;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

export function storedHold(h: Hold): StoredHold {
  const out: StoredHold = { kind: h.kind };
  put(out, "until", h.until);
  put(out, "pod", h.pod);
  if (h.pool !== undefined) out.pool = h.pool;
  if (h.note !== undefined) out.note = h.note;
  if (h.by !== undefined) out.by = h.by;
  return out;
}

export function holdOf(space: string, ip: string, s: StoredHold): Hold {
  const hold: Hold = { space, family: familyOfIp(ip), ip, kind: s.kind, until: s.until ?? null, pod: s.pod ?? null };
  if (s.pool !== undefined) hold.pool = s.pool;
  if (s.note !== undefined) hold.note = s.note;
  if (s.by !== undefined) hold.by = s.by;
  return hold;
}

export function storedBinding(b: Binding): StoredBinding {
  return b.releasedAt === null ? { ip: b.ip } : { ip: b.ip, releasedAt: b.releasedAt };
}

export function bindingOf(space: string, pod: string, s: StoredBinding): Binding {
  return { space, pod, family: familyOfIp(s.ip), ip: s.ip, releasedAt: s.releasedAt ?? null };
}
