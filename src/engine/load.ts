/**
 * Reading what the store holds into the engine's memory: every address taken (allocations and
 * holds), the holds and bindings, cursors and this node's blocks — at start, or one address
 * space again when memory may have it wrong.
 */
import { type Family, parseIp } from "../ipam/address.ts";
import type { Store } from "../store/store.ts";
import type { StoreSnapshot } from "./state.ts";

/**
 * A canonical dotted quad ("10.1.2.3", as the stores write them) as a number, without the
 * allocations of split and BigInt; undefined for anything else, which parseIp then judges.
 */
function ipv4Number(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // a leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
      digits++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + part;
}

/** What the store holds (of one space, if given), in the shape AddressState.load takes. */
export async function readSnapshot(store: Store, space?: string): Promise<StoreSnapshot> {
  // Collected per set, then loaded in bulk: a million one-by-one inserts would cost seconds.
  const bySet = new Map<string, StoreSnapshot["taken"][number]>();
  let last: StoreSnapshot["taken"][number] | undefined;
  await store.forEachTaken((s, family: Family, ip, held) => {
    let value: bigint | number | undefined = family === 4 ? ipv4Number(ip) : undefined;
    if (value === undefined) {
      const parsed = parseIp(ip);
      if (!parsed) return;
      value = parsed.value;
    }
    // Rows come ordered by space: the set of the row before is nearly always this row's.
    if (!last || last.space !== s || last.family !== family) {
      const key = `${s}/${family}`;
      last = bySet.get(key);
      if (!last) bySet.set(key, (last = { space: s, family, values: [], allocated: 0 }));
    }
    last.values.push(value);
    if (!held) last.allocated++;
  }, space);
  const [holds, bindings] = await Promise.all([store.holds(space), store.bindings()]);
  return { taken: [...bySet.values()], holds, bindings: space === undefined ? bindings : bindings.filter((b) => b.space === space) };
}
