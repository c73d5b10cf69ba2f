/**
 * Everything that gives addresses back — DEL, CNI GC, the leak sweep, an operator's release,
 * abandoned blocks — as the engine's shell around planRelease, planForget and planAbandoned:
 * each reads what its plan needs, under the attachment's lock, and applies it through the one
 * apply path.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { formatIp, lastOf, networkOf, parseCidr } from "../ipam/address.ts";
import type { GcRequest } from "./requests.ts";
import { type AllocationRecord, type Binding, ConflictError, type ReleaseKind } from "../store/store.ts";
import { planAbandoned } from "./blocks.ts";
import type { Engine } from "./engine.ts";
import { isNamedSpace, spaceName } from "./pools.ts";
import { planForget, planRelease } from "./plan-release.ts";
import { stickyKey } from "./target.ts";

/**
 * Releases allocations read just before. A binding is read fresh where another daemon may
 * have changed it — and only where one can be: every pod has a key, most pools are not sticky.
 */
async function release(engine: Engine, records: AllocationRecord[], cause: string, kind: ReleaseKind): Promise<void> {
  if (records.length === 0) return;
  const bindings = new Map<string, Binding | undefined>();
  if (engine.sharing.freshBindings) {
    for (const r of records) {
      const pod = stickyKey(r.pool, r.podNamespace, r.podName);
      if (!pod || !(engine.registry.policyOf(r).sticky || engine.state.binding(r.space, pod))) continue;
      const binding = await engine.store.binding(r.space, pod);
      engine.state.learnBinding(r.space, pod, binding);
      bindings.set(`${r.space}\0${pod}`, binding);
    }
  }
  const plan = planRelease(engine.state, { records, cause, kind, now: engine.now(), policyOf: (r) => engine.registry.policyOf(r), bindings });
  await engine.applier.apply(plan);
}

/**
 * Reads what an attachment holds and releases it. With a shared store another node may have
 * released an address and handed it out again between the read and the commit, which the
 * store refuses as a conflict: then what is still this attachment's is read again and goes.
 */
export async function releaseCurrent(engine: Engine, read: () => Promise<AllocationRecord[]>, cause: string, kind: ReleaseKind): Promise<AllocationRecord[]> {
  let current = await read();
  try {
    await release(engine, current, cause, kind);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    current = await read();
    await release(engine, current, cause, kind);
  }
  return current;
}

/**
 * Releases given allocations attachment by attachment, each under its attachment's lock and
 * re-read inside it, so a concurrent ADD or DEL of the same attachment cannot interleave.
 */
export async function releaseRecords(engine: Engine, records: AllocationRecord[], cause: string, kind: ReleaseKind): Promise<AllocationRecord[]> {
  const released: AllocationRecord[] = [];
  const byAttachment = new Map<string, AllocationRecord>();
  for (const r of records) byAttachment.set(`${r.network}\0${r.containerID}\0${r.ifname}`, r);
  const wanted = new Set(records.map((r) => `${r.space}\0${r.ip}`));
  for (const r of byAttachment.values()) {
    await engine.locks.run(r.network, r, async () => {
      const read = async () => (await engine.store.attachment(r.network, r)).filter((c) => wanted.has(`${c.space}\0${c.ip}`));
      released.push(...(await releaseCurrent(engine, read, cause, kind)));
    });
  }
  return released;
}

/**
 * An operator's release of one address: its allocation and any sticky binding or cooldown
 * that keeps it from the pool (a reservation stays: see unreserve). An address held in more
 * than one place (two netconfs with the same inline range, pools of two spaces) is refused
 * with the list unless `network` or `space` picks one.
 */
export async function releaseAddress(engine: Engine, ip: string, cause: string, where: { network?: string; space?: string } = {}): Promise<{ released: AllocationRecord[]; unbound: number }> {
  const inSpace = (space: string) => where.space === undefined || isNamedSpace(space, where.space);
  const holders = (await engine.store.holders(ip)).filter((h) => (where.network === undefined || h.network === where.network) && inSpace(h.space));
  const held = engine.state.spacesHolding(ip).filter(inSpace);
  if (where.network === undefined && where.space === undefined) {
    // A hold (cooldown, parked binding) has no network: its space names its place.
    const spaces = [...new Set([...holders.map((h) => h.space), ...held])];
    if (spaces.every((space) => !space.startsWith("@"))) {
      const networks = new Set([...holders.map((h) => h.network), ...held]);
      if (networks.size > 1) throw new IpamError(ErrorCode.AddressInUse, `${ip} is held in ${networks.size} networks: ${[...networks].sort().join(", ")}; release one with --network NAME`);
    } else {
      const places = new Set([...holders.map((h) => placeOf(h.network, h.space)), ...held.filter((space) => !holders.some((h) => h.space === space)).map(spaceName)]);
      if (places.size > 1) throw new IpamError(ErrorCode.AddressInUse, `${ip} is held in ${places.size} places: ${[...places].sort().join("; ")}; release one with --network NAME or --space NAME`);
    }
  }
  const released = await releaseRecords(engine, holders, cause, "released");
  // Named: the holds of that network's own space, or of that space, and of the holders released.
  const spaces =
    where.network === undefined && where.space === undefined
      ? [...new Set([...held, ...engine.state.bindingsAt(ip).map((b) => b.space)])]
      : [...new Set([...(where.network ? [where.network] : held), ...holders.map((h) => h.space)])];
  const plan = planForget(engine.state, ip, spaces, engine.state.bindingsAt(ip));
  if (plan.changes.length > 0) await engine.applier.apply(plan);
  return { released, unbound: plan.ends.length };
}

/** Where an allocation is, as an operator tells two apart: its network, and a named pool's space. */
const placeOf = (network: string, space: string): string => (space.startsWith("@") ? `network ${network} (space ${spaceName(space)})` : `network ${network}`);

/** CNI GC: releases every attachment of the network the runtime does not list as valid. */
export async function collectGarbage(engine: Engine, req: GcRequest, cause: string): Promise<string[]> {
  const valid = new Set(req.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
  // A runtime lists only its own node's attachments: with a shared store, other nodes'
  // allocations are theirs to collect, never this node's.
  const node = engine.sharing.collectOf(engine.node);
  const stale: AllocationRecord[] = [];
  for (const key of await engine.store.attachments(req.network, node)) {
    if (valid.has(`${key.containerID}\0${key.ifname}`)) continue;
    const records = await engine.store.attachment(req.network, key);
    stale.push(...records.filter((r) => node === undefined || r.node === node));
  }
  return (await releaseRecords(engine, stale, cause, "reclaimed")).map((r) => r.ip);
}

/** Gives up empty blocks of nodes that are gone (shared stores); each block's emptiness is asked of the store. */
export async function releaseAbandonedBlocks(engine: Engine): Promise<string[]> {
  if (!engine.sharing.blocks) return [];
  const [blocks, live] = await Promise.all([engine.store.blocks(), engine.store.liveNodes()]);
  const candidates = blocks.filter((b) => !live.includes(b.node) && b.node !== engine.node);
  const empty = new Set<string>();
  for (const b of candidates) {
    const cidr = parseCidr(b.cidr);
    if (cidr && !(await engine.store.anyTaken(b.space, formatIp(networkOf(cidr), cidr.family), formatIp(lastOf(cidr), cidr.family)))) empty.add(`${b.space}\0${b.cidr}`);
  }
  const released: string[] = [];
  for (const { block, plan } of planAbandoned(candidates, new Set(live), engine.node, (b) => empty.has(`${b.space}\0${b.cidr}`))) {
    try {
      await engine.applier.apply(plan);
      released.push(`${block.space} ${block.cidr} (node ${block.node})`);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  return released;
}
