/**
 * The set of taken addresses of one address space, kept as maximal extents [lo, hi] in
 * sorted leaves of at most LEAF extents each (a two-level B-tree): finding the extent at or
 * before x is two binary searches, O(log n) in the number of extents, whatever the pool size;
 * an insert or removal moves at most LEAF entries of one leaf (and, when a leaf splits or
 * empties, shifts the leaf array by one slot: n/LEAF pointers, a memmove of 64 KiB at a
 * million extents, which measured cheaper than rebalancing a tree of a million nodes). Because extents are maximal,
 * the address after an extent is always free, so "the first free address at or after x" is
 * one lookup. Memory grows with fragmentation of what is taken, not with the size of the
 * range: a /8 or a /64 costs nothing until used, a run of a million consecutive allocations
 * is one extent.
 *
 * Extents are stored as plain numbers while every address fits one exactly (all of IPv4,
 * ~16 bytes per extent instead of ~100 for a tree node holding two bigints); the set
 * switches itself to bigints the first time a larger address (IPv6) arrives. The API is
 * bigint either way.
 */

/** What readers of a set (the allocator, planners, reports) may use: nothing that changes it. */
export type TakenAddresses = Pick<ExtentSet, "has" | "firstFree" | "countIn" | "extents" | "size">;

/** A key: a number while the set is narrow, a bigint once it is wide. Typed as number; see toKey. */
type Key = number;

interface Leaf {
  lo: Key[];
  hi: Key[];
  /** Addresses taken in this leaf, so counting a range skips whole leaves. */
  taken: number;
}

const LEAF = 128;
const MAX_NARROW = BigInt(Number.MAX_SAFE_INTEGER);

export class ExtentSet {
  private leaves: Leaf[] = [];
  private count = 0;
  private extentTotal = 0;
  private wide = false;
  /** 1 or 1n, whichever the keys are. */
  private one: Key = 1;

  /** How many addresses are taken. */
  get size(): number {
    return this.count;
  }

  /** How many maximal extents hold them (the memory cost). */
  get extentCount(): number {
    return this.extentTotal;
  }

  private toKey(x: bigint): Key {
    if (this.wide) return x as unknown as Key;
    if (x <= MAX_NARROW && x >= 0n) return Number(x);
    this.widen();
    return x as unknown as Key;
  }

  private fromKey(k: Key): bigint {
    return this.wide ? (k as unknown as bigint) : BigInt(k);
  }

  private widen(): void {
    for (const leaf of this.leaves) {
      leaf.lo = leaf.lo.map((k) => BigInt(k) as unknown as Key);
      leaf.hi = leaf.hi.map((k) => BigInt(k) as unknown as Key);
    }
    this.wide = true;
    this.one = 1n as unknown as Key;
  }

  private width(lo: Key, hi: Key): number {
    return Number(hi - lo + this.one);
  }

  /** The index of the last leaf whose first lo ≤ x, or -1. */
  private leafAt(x: Key): number {
    let a = 0;
    let b = this.leaves.length - 1;
    let best = -1;
    while (a <= b) {
      const m = (a + b) >> 1;
      if (this.leaves[m]!.lo[0]! <= x) {
        best = m;
        a = m + 1;
      } else b = m - 1;
    }
    return best;
  }

  /** The index in `lo` of the last extent with lo ≤ x (x ≥ lo[0]). */
  private static within(lo: Key[], x: Key): number {
    let a = 0;
    let b = lo.length - 1;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (lo[m]! <= x) a = m;
      else b = m - 1;
    }
    return a;
  }

  has(x: bigint): boolean {
    if (this.leaves.length === 0) return false;
    const k = this.toKey(x);
    const l = this.leafAt(k);
    if (l < 0) return false;
    const leaf = this.leaves[l]!;
    return leaf.hi[ExtentSet.within(leaf.lo, k)]! >= k;
  }

  private insertAt(l: number, i: number, lo: Key, hi: Key): void {
    if (l < 0) {
      if (this.leaves.length === 0) {
        this.leaves.push({ lo: [lo], hi: [hi], taken: this.width(lo, hi) });
        this.extentTotal++;
        return;
      }
      l = 0;
      i = 0;
    }
    const leaf = this.leaves[l]!;
    leaf.lo.splice(i, 0, lo);
    leaf.hi.splice(i, 0, hi);
    leaf.taken += this.width(lo, hi);
    this.extentTotal++;
    if (leaf.lo.length > LEAF) {
      const half = leaf.lo.length >> 1;
      const right: Leaf = { lo: leaf.lo.splice(half), hi: leaf.hi.splice(half), taken: 0 };
      for (let j = 0; j < right.lo.length; j++) right.taken += this.width(right.lo[j]!, right.hi[j]!);
      leaf.taken -= right.taken;
      this.leaves.splice(l + 1, 0, right);
    }
  }

  private removeAt(l: number, i: number): void {
    const leaf = this.leaves[l]!;
    leaf.taken -= this.width(leaf.lo[i]!, leaf.hi[i]!);
    leaf.lo.splice(i, 1);
    leaf.hi.splice(i, 1);
    this.extentTotal--;
    if (leaf.lo.length === 0) this.leaves.splice(l, 1);
  }

  /** Marks x taken; false when it already was. */
  add(x: bigint): boolean {
    const k = this.toKey(x);
    const one = this.one;
    const l = this.leafAt(k);
    let i = -1;
    if (l >= 0) {
      const leaf = this.leaves[l]!;
      i = ExtentSet.within(leaf.lo, k);
      if (leaf.hi[i]! >= k) return false;
    }
    // The extent after (l, i): the next in the leaf, or the first of the next leaf.
    let nl = l < 0 ? 0 : l;
    let ni = i + 1;
    if (nl < this.leaves.length && ni >= this.leaves[nl]!.lo.length) {
      nl++;
      ni = 0;
    }
    const next = nl < this.leaves.length ? this.leaves[nl]! : null;
    const joinsBelow = l >= 0 && this.leaves[l]!.hi[i]! === k - one;
    const joinsAbove = next !== null && next.lo[ni]! === k + one;
    if (joinsBelow && joinsAbove) {
      const leaf = this.leaves[l]!;
      const hi = next.hi[ni]!;
      this.removeAt(nl, ni);
      leaf.taken += this.width(leaf.hi[i]! + one, hi);
      leaf.hi[i] = hi;
    } else if (joinsBelow) {
      const leaf = this.leaves[l]!;
      leaf.hi[i] = k;
      leaf.taken++;
    } else if (joinsAbove) {
      // Nothing lies between x and the next extent, so moving its lo keeps everything ordered.
      next.lo[ni] = k;
      next.taken++;
    } else {
      this.insertAt(l, i + 1, k, k);
    }
    this.count++;
    return true;
  }

  /** Marks x free; false when it was not taken. */
  delete(x: bigint): boolean {
    if (this.leaves.length === 0) return false;
    const k = this.toKey(x);
    const one = this.one;
    const l = this.leafAt(k);
    if (l < 0) return false;
    const leaf = this.leaves[l]!;
    const i = ExtentSet.within(leaf.lo, k);
    const lo = leaf.lo[i]!;
    const hi = leaf.hi[i]!;
    if (hi < k) return false;
    if (lo === hi) this.removeAt(l, i);
    else {
      leaf.taken--;
      if (k === lo) leaf.lo[i] = k + one;
      else if (k === hi) leaf.hi[i] = k - one;
      else {
        leaf.hi[i] = k - one;
        leaf.taken -= this.width(k + one, hi);
        this.insertAt(l, i + 1, k + one, hi);
      }
    }
    this.count--;
    return true;
  }

  /** The first free address in [from, to], or null when all of it is taken. */
  firstFree(from: bigint, to: bigint): bigint | null {
    if (from > to) return null;
    if (this.leaves.length === 0) return from;
    const k = this.toKey(from);
    const l = this.leafAt(k);
    if (l < 0) return from;
    const leaf = this.leaves[l]!;
    const hi = leaf.hi[ExtentSet.within(leaf.lo, k)]!;
    const candidate = hi >= k ? this.fromKey(hi) + 1n : from;
    return candidate <= to ? candidate : null;
  }

  /**
   * Marks many addresses taken at once (a rebuild from the store): sorted and coalesced into
   * full leaves when the set is empty, one by one otherwise. Numbers must be safe integers
   * (IPv4 addresses are); a rebuild passes them so a million keys sort as a Float64Array.
   * Returns how many were new.
   */
  addAll(values: (bigint | number)[]): number {
    if (this.count > 0 || values.length === 0) return values.reduce<number>((n, v) => n + (this.add(BigInt(v)) ? 1 : 0), 0);
    if (values.every((v) => typeof v === "number")) return this.loadSorted(Float64Array.from(values as number[]).sort() as unknown as ArrayLike<Key>, values.length);
    const sorted = values.map((v) => BigInt(v)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (sorted[sorted.length - 1]! > MAX_NARROW || sorted[0]! < 0n) this.widen();
    return this.loadSorted((this.wide ? sorted : sorted.map(Number)) as unknown as ArrayLike<Key>, sorted.length);
  }

  /** Coalesces sorted keys (duplicates allowed) into extents and loads them into this empty set. */
  private loadSorted(sorted: ArrayLike<Key>, length: number): number {
    const lo: Key[] = [];
    const hi: Key[] = [];
    let added = 0;
    for (let j = 0; j < length; j++) {
      const k = sorted[j]!;
      const last = hi.length - 1;
      if (last >= 0 && hi[last]! >= k) continue; // a duplicate
      added++;
      if (last >= 0 && hi[last]! === k - this.one) hi[last] = k;
      else {
        lo.push(k);
        hi.push(k);
      }
    }
    this.loadExtents(lo, hi, added);
    return added;
  }

  /** Fills an empty set from sorted, disjoint, non-adjacent extents; leaves are left 3/4 full. */
  private loadExtents(lo: Key[], hi: Key[], taken: number): void {
    const per = (LEAF * 3) >> 2;
    for (let s = 0; s < lo.length; s += per) {
      const leaf: Leaf = { lo: lo.slice(s, s + per), hi: hi.slice(s, s + per), taken: 0 };
      for (let j = 0; j < leaf.lo.length; j++) leaf.taken += this.width(leaf.lo[j]!, leaf.hi[j]!);
      this.leaves.push(leaf);
    }
    this.extentTotal = lo.length;
    this.count = taken;
  }

  /** The taken extents in order, for reports (orphans); O(k) in the extents visited. */
  *extents(): Generator<[bigint, bigint]> {
    for (const leaf of this.leaves) {
      for (let j = 0; j < leaf.lo.length; j++) yield [this.fromKey(leaf.lo[j]!), this.fromKey(leaf.hi[j]!)];
    }
  }

  /** How many taken addresses lie in [from, to]; whole leaves inside the range count at once. */
  countIn(from: bigint, to: bigint): number {
    if (from > to || this.leaves.length === 0) return 0;
    const f = this.toKey(from);
    // A bound past every narrow key stays a bigint; compared with numbers it still orders right.
    const t = (this.wide || to <= MAX_NARROW ? this.toKey(to) : to) as Key;
    let total = 0;
    for (let l = Math.max(0, this.leafAt(f)); l < this.leaves.length; l++) {
      const leaf = this.leaves[l]!;
      const n = leaf.lo.length;
      if (leaf.lo[0]! > t) break;
      if (leaf.hi[n - 1]! < f) continue;
      if (leaf.lo[0]! >= f && leaf.hi[n - 1]! <= t) {
        total += leaf.taken;
        continue;
      }
      for (let j = 0; j < n; j++) {
        const lo = leaf.lo[j]! > f ? leaf.lo[j]! : f;
        const hi = leaf.hi[j]! < t ? leaf.hi[j]! : t;
        if (lo <= hi) total += this.width(lo, hi);
      }
    }
    return total;
  }
}
