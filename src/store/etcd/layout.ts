/**
 * Where the etcd store keeps what, under its prefix (default /ipamd/). Every component of a key
 * is escaped (see part), so no identifier can reach into another key's space: a container ID
 * holding '/' cannot alias another attachment. An address in a key is its address-order key in
 * hex (see addressOrderKey), so keys list in address order and a page is one range read.
 *
 *   a/SPACE/ADDR                       the allocation's record, or a hold marker (cooldown,
 *                                      sticky): the compare-and-swap key of the address
 *   att/CID/NETWORK/IFNAME/SPACE/ADDR  the record again, found by attachment or container
 *   n/NODE/NETWORK/CID/IFNAME/SPACE/ADDR  ""  a node's allocations (leak sweep, GC, by node)
 *   sp/SPACE                           every space that ever had an allocation: who holds an
 *                                      address in any space is its a/ key in each of them
 *   pod/NAMESPACE/NAME/SPACE/ADDR      ""  a pod's allocations (NAME empty: a namespace was
 *                                      given without a pod name)
 *   nsp/POOL/NAMESPACE/SPACE/ADDR      ""  a namespace's allocations from a named pool:
 *                                      counted for maxPerNamespace
 *   ev/TIME-NODE-SEQ                   the history events of one commit (values.ts)
 *   evi/ip/ADDR/EVID, evi/c/CID/EVID, evi/p/NS/NAME/EVID, evi/k/KIND/EVID   ""  its indexes
 *   hold/SPACE/ADDR                    a hold's details (its a/ key holds the marker)
 *   cur/RANGESET  bind/SPACE/POD  subnet/POOL/SUBNET (value: node)
 *   block/SPACE/CIDR (value: node)     node/NAME (leased: alive)   health/NODE   layout
 *
 * Each secondary key lets one question read about as many keys as its answer holds, so a
 * node's periodic work reads that node's share of the cluster, not the whole cluster. Every
 * key an allocation writes costs etcd CPU on every ADD and DEL, so a question that can be
 * answered from the few spaces instead (who holds an address) has no key per allocation.
 */
import { addressOrderKey, type Family, formatIp, parseIp } from "../../ipam/address.ts";
import type { AllocationRecord, HistoryEvent } from "../store.ts";

/** The layout version this code writes (older ones are migrated; see migrate.ts). */
export const LAYOUT_VERSION = "5";

const SAFE = /^[A-Za-z0-9._~:@-]*$/;

/**
 * Key components made again and again: an allocation's space and address go into seven keys,
 * each built twice (a caller's cost, then its transaction), and a space always needs escaping
 * ('|' and '/'). Remembered up to a bound, then forgotten whole: cheap, and enough, since the
 * same few spaces and the addresses of the commits in the air are what come back.
 */
class Remembered {
  private readonly known = new Map<string, string>();
  constructor(private readonly make: (text: string) => string) {}
  get(text: string): string {
    let made = this.known.get(text);
    if (made === undefined) {
      if (this.known.size >= 8192) this.known.clear();
      made = this.make(text);
      this.known.set(text, made);
    }
    return made;
  }
}

const escaped = new Remembered((text) => {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
});

/** A key component: any text, escaped so it holds no '/' and no two texts escape alike. */
export function part(text: string): string {
  return SAFE.test(text) ? text : escaped.get(text);
}

export const unpart = (escaped: string): string => (escaped.includes("%") ? decodeURIComponent(escaped) : escaped);

const addressParts = new Remembered((ip) => {
  const parsed = parseIp(ip);
  if (!parsed) throw new Error(`not an IP address: ${ip}`);
  return Buffer.from(addressOrderKey(parsed.family, parsed.value)).toString("hex");
});

/** An address as a key component: hex of its address-order key. */
export const addressPart = (ip: string): string => addressParts.get(ip);

/** The address an address part stands for. */
export function addressOf(hex: string): { family: Family; ip: string } {
  const family = Number.parseInt(hex.slice(0, 2), 16) as Family;
  return { family, ip: formatIp(BigInt(`0x${hex.slice(2)}`), family) };
}

/** An event's id part: time, node and a per-daemon sequence, so keys list in time order. */
export const eventId = (at: number, node: string, seq: number): string => `${String(at).padStart(15, "0")}-${part(node)}-${String(seq).padStart(10, "0")}`;

/** The time of an event id (its first 15 digits). */
export const eventTime = (id: string): number => Number(id.slice(0, 15));

export class Layout {
  constructor(readonly prefix: string) {}

  private key = (...parts: string[]): string => this.prefix + parts.join("/");

  allocations = (space?: string): string => (space === undefined ? this.key("a", "") : this.key("a", part(space), ""));
  allocation = (space: string, ip: string): string => `${this.prefix}a/${part(space)}/${addressPart(ip)}`;

  attachment = (containerID: string, network: string, ifname: string): string => `${this.prefix}att/${part(containerID)}/${part(network)}/${part(ifname)}/`;
  containers = (): string => this.key("att", "");
  container = (containerID: string): string => this.key("att", part(containerID), "");
  attachmentEntry = (r: AllocationRecord): string => this.attachment(r.containerID, r.network, r.ifname) + `${part(r.space)}/${addressPart(r.ip)}`;

  node = (node: string, network?: string): string => this.key("n", part(node), ...(network === undefined ? [] : [part(network)]), "");
  nodeEntry = (r: AllocationRecord): string => `${this.prefix}n/${part(r.node)}/${part(r.network)}/${part(r.containerID)}/${part(r.ifname)}/${part(r.space)}/${addressPart(r.ip)}`;

  spaces = (): string => this.key("sp", "");
  space = (space: string): string => this.key("sp", part(space));
  /** Layouts 2 to 4 kept ip/ADDR/SPACE per allocation; layout 5 reads the a/ key of each space (sp/). */
  formerHolders = (): string => this.key("ip", "");

  pod = (namespace: string, name?: string): string => this.key("pod", part(namespace), ...(name === undefined ? [] : [part(name)]), "");
  /** Under its namespace whether or not it names the pod, so a namespace's list finds every one. */
  podEntry = (r: AllocationRecord): string | null => (r.podNamespace ? this.pod(r.podNamespace, r.podName ?? "") + `${part(r.space)}/${addressPart(r.ip)}` : null);

  namespaceUse = (pool: string, namespace?: string): string => this.key("nsp", part(pool), ...(namespace === undefined ? [] : [part(namespace)]), "");
  namespaceEntry = (r: AllocationRecord): string | null => (r.pool !== null && r.podNamespace ? this.namespaceUse(r.pool, r.podNamespace) + `${part(r.space)}/${addressPart(r.ip)}` : null);

  /** The secondary keys of an allocation (att/ holds the record; the others are references). */
  entries(r: AllocationRecord): { attachment: string; references: string[] } {
    const optional = [this.podEntry(r), this.namespaceEntry(r)].filter((key): key is string => key !== null);
    return { attachment: this.attachmentEntry(r), references: [this.nodeEntry(r), ...optional] };
  }

  events = (): string => this.key("ev", "");
  event = (id: string): string => this.key("ev", id);
  eventIndex = (kind: "ip" | "c" | "p" | "k", ...of: string[]): string => this.key("evi", kind, ...of.map(kind === "ip" ? (x) => x : part), "");

  /** The index keys of an event: by address, container, pod, and by kind for the rare kinds. */
  eventIndexes(e: HistoryEvent, id: string): string[] {
    const keys = [this.eventIndex("ip", addressPart(e.ip)) + id];
    if (e.containerID) keys.push(this.eventIndex("c", e.containerID) + id);
    if (e.podNamespace && e.podName) keys.push(this.eventIndex("p", e.podNamespace, e.podName) + id);
    if (e.kind !== "allocated" && e.kind !== "released") keys.push(this.eventIndex("k", e.kind) + id);
    return keys;
  }

  cursors = (): string => this.key("cur", "");
  cursor = (rangeSet: string): string => this.key("cur", part(rangeSet));
  holds = (space?: string): string => (space === undefined ? this.key("hold", "") : this.key("hold", part(space), ""));
  hold = (space: string, ip: string): string => this.key("hold", part(space), addressPart(ip));
  bindings = (): string => this.key("bind", "");
  binding = (space: string, pod: string): string => this.key("bind", part(space), part(pod));
  subnets = (pool: string): string => this.key("subnet", part(pool), "");
  subnet = (pool: string, subnet: string): string => this.key("subnet", part(pool), part(subnet));
  blocks = (space?: string): string => (space === undefined ? this.key("block", "") : this.key("block", part(space), ""));
  block = (space: string, cidr: string): string => this.key("block", part(space), part(cidr));
  liveNodes = (): string => this.key("node", "");
  liveNode = (node: string): string => this.key("node", part(node));
  health = (node: string): string => this.key("health", part(node));
  version = (): string => this.key("layout");

  /** The components of a key below `base` (a prefix this layout made), unescaped. */
  partsOf(key: string, base: string): string[] {
    return key.slice(base.length).split("/").map(unpart);
  }

  /** The a/ key a secondary key's last two components (SPACE/ADDR, escaped) point to. */
  referenced(key: string): string {
    const parts = key.split("/");
    return this.prefix + ["a", parts[parts.length - 2], parts[parts.length - 1]].join("/");
  }
}
