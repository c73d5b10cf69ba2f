/**
 * Where the Kubernetes-API store keeps what: the name of each object, made from what it is
 * about (a block's space and CIDR, a pool and namespace, a pool and subnet, a node). Names must
 * be DNS subdomains, and spaces, pools and nodes are free text: a name is a readable part
 * (lower-cased, every other character a '-') plus a hash of the exact texts, so no two
 * different texts share a name however alike their readable parts are.
 */
import { type Family, formatCidr, hostMask, parseIp } from "../../ipam/address.ts";

/** Prefix lengths of the blocks the store cuts each family's spaces into. */
export interface BlockPrefixes {
  v4: number;
  v6: number;
}

const readable = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");

/** A DNS-subdomain name: kind, readable parts, and a hash of the exact texts. */
export function objectName(kind: string, ...texts: string[]): string {
  // Bun's own hasher: a static node:crypto import would load with every plugin exec (DESIGN.md).
  const hash = new Bun.CryptoHasher("sha256").update(texts.join("\0")).digest("hex").slice(0, 16);
  const parts = texts.map(readable).filter((p) => p !== "");
  return [kind, ...parts, hash].join("-");
}

/** The block (its CIDR) an address of a family falls in. */
export function blockCidr(ip: string, prefixes: BlockPrefixes): { cidr: string; family: Family } {
  const parsed = parseIp(ip);
  if (!parsed) throw new Error(`not an IP address: ${ip}`);
  const prefix = parsed.family === 4 ? prefixes.v4 : prefixes.v6;
  return { cidr: formatCidr(parsed.value & ~hostMask(parsed.family, prefix), parsed.family, prefix), family: parsed.family };
}

export const blockName = (space: string, cidr: string): string => objectName("b", space, cidr);
export const usageName = (pool: string, namespace: string): string => objectName("u", pool, namespace);
export const subnetName = (pool: string, subnet: string): string => objectName("s", pool, subnet);
export const nodeLeaseName = (node: string): string => objectName("ipamd-node", node);

/** The label every node Lease of the store carries, so liveNodes lists those alone. */
export const NODE_LEASE_LABEL = "ipamd.io/node-lease";
