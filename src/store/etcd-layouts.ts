/**
 * Which layout an etcd prefix holds, decided once per prefix and kept in its `layout` key. A
 * new prefix gets blocks (the block store, kube/, with its objects in etcd: etcd-objects.ts);
 * a prefix an earlier version filled keeps a key per address (etcd.ts), which that store
 * migrates to its latest form as before.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { IPAMBlocks } from "../kube/resources.ts";
import { type EtcdClient, prefixEnd } from "./etcd-client.ts";

export type EtcdLayout = "blocks" | "per-address";
/** The layout key's value on a prefix of blocks (the per-address layout writes its version, "5"). */
export const BLOCKS_LAYOUT = "blocks";

/**
 * The prefix's layout. An empty prefix is named "blocks" by the first daemon to get there (a
 * transaction that finds the prefix still empty); a prefix with keys but no layout key holds
 * the first per-address layout's.
 */
export async function etcdLayout(client: EtcdClient, prefix: string): Promise<EtcdLayout> {
  const marker = `${prefix}layout`;
  for (;;) {
    // Keys first, the marker after: the marker, written before any block and never removed,
    // is then missing only if those keys are the first layout's (a daemon naming the layout
    // meanwhile is seen by the marker's read).
    const keys = await client.range(prefix, prefixEnd(prefix), { limit: 1, keysOnly: true });
    const [found] = await client.range(marker);
    if (found?.value === BLOCKS_LAYOUT) return "blocks";
    if (found || keys.length > 0) return perAddress(client, prefix, found?.value);
    // Empty: this daemon names the layout, unless another daemon has just done so.
    const { succeeded } = await client.txn([{ key: prefix, target: "CREATE", result: "EQUAL", create_revision: 0, rangeEnd: prefixEnd(prefix) }], [{ put: { key: marker, value: BLOCKS_LAYOUT } }]);
    if (succeeded) return "blocks";
  }
}

/**
 * A prefix whose layout key names the per-address layout but which holds blocks: a daemon of an
 * earlier version, which knows only that layout, started on a prefix of blocks and wrote its
 * layout key. Daemons of both layouts on one prefix would hand out the same addresses, so this
 * one refuses to start, saying what to do.
 */
async function perAddress(client: EtcdClient, prefix: string, marker: string | undefined): Promise<EtcdLayout> {
  const blocks = `${prefix}${IPAMBlocks.plural}/`;
  if ((await client.range(blocks, prefixEnd(blocks), { limit: 1, keysOnly: true })).length === 0) return "per-address";
  throw new IpamError(
    ErrorCode.IoFailure,
    `etcd prefix ${prefix} holds blocks, but its layout key says ${JSON.stringify(marker ?? "")}: a daemon of an earlier version (it knows only the per-address layout) has started on it. Stop every such daemon, then set the key back (etcdctl put ${prefix}layout ${BLOCKS_LAYOUT})`,
  );
}
