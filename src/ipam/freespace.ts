/**
 * The set of taken addresses of one address space, kept as maximal extents [lo, hi] in an
 * AVL tree keyed by lo. Because extents are maximal, the address after an extent is always
 * free, so "the first free address at or after x" is one descent: O(log n) in the number
 * of extents, whatever the pool size. Memory grows with fragmentation of what is taken, not
 * with the size of the range: a /8 or a /64 costs nothing until used, and a run of a
 * million consecutive allocations is one node.
 */
interface Extent {
  lo: bigint;
  hi: bigint;
  left: Extent | null;
  right: Extent | null;
  height: number;
}

const heightOf = (n: Extent | null): number => (n ? n.height : 0);

function update(n: Extent): Extent {
  n.height = 1 + Math.max(heightOf(n.left), heightOf(n.right));
  return n;
}

function rotateRight(n: Extent): Extent {
  const l = n.left!;
  n.left = l.right;
  l.right = update(n);
  return update(l);
}

function rotateLeft(n: Extent): Extent {
  const r = n.right!;
  n.right = r.left;
  r.left = update(n);
  return update(r);
}

function balance(n: Extent): Extent {
  update(n);
  const skew = heightOf(n.left) - heightOf(n.right);
  if (skew > 1) {
    if (heightOf(n.left!.left) < heightOf(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (skew < -1) {
    if (heightOf(n.right!.right) < heightOf(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

function insertNode(root: Extent | null, node: Extent): Extent {
  if (!root) return node;
  if (node.lo < root.lo) root.left = insertNode(root.left, node);
  else root.right = insertNode(root.right, node);
  return balance(root);
}

function removeMin(root: Extent): [Extent | null, Extent] {
  if (!root.left) return [root.right, root];
  const [left, min] = removeMin(root.left);
  root.left = left;
  return [balance(root), min];
}

function removeNode(root: Extent | null, lo: bigint): Extent | null {
  if (!root) return null;
  if (lo < root.lo) root.left = removeNode(root.left, lo);
  else if (lo > root.lo) root.right = removeNode(root.right, lo);
  else {
    if (!root.left) return root.right;
    if (!root.right) return root.left;
    const [right, min] = removeMin(root.right);
    min.left = root.left;
    min.right = right;
    return balance(min);
  }
  return balance(root);
}

export class ExtentSet {
  private root: Extent | null = null;
  private count = 0;
  private extentTotal = 0;

  /** How many addresses are taken. */
  get size(): number {
    return this.count;
  }

  /** How many maximal extents hold them (the memory cost). */
  get extentCount(): number {
    return this.extentTotal;
  }

  /** The extent with the greatest lo ≤ x, if any. */
  private floor(x: bigint): Extent | null {
    let n = this.root;
    let best: Extent | null = null;
    while (n) {
      if (n.lo <= x) {
        best = n;
        n = n.right;
      } else n = n.left;
    }
    return best;
  }

  private containing(x: bigint): Extent | null {
    const n = this.floor(x);
    return n && n.hi >= x ? n : null;
  }

  has(x: bigint): boolean {
    return this.containing(x) !== null;
  }

  /** Marks x taken; false when it already was. */
  add(x: bigint): boolean {
    const below = this.floor(x);
    if (below && below.hi >= x) return false;
    const joinsBelow = below !== null && below.hi === x - 1n;
    const above = this.floor(x + 1n);
    const joinsAbove = above !== null && above.lo === x + 1n;
    if (joinsBelow && joinsAbove) {
      below.hi = above.hi;
      this.root = removeNode(this.root, above.lo);
      this.extentTotal--;
    } else if (joinsBelow) {
      below.hi = x;
    } else if (joinsAbove) {
      // Nothing lies between x and above.lo, so moving the key keeps the tree ordered.
      above.lo = x;
    } else {
      this.root = insertNode(this.root, { lo: x, hi: x, left: null, right: null, height: 1 });
      this.extentTotal++;
    }
    this.count++;
    return true;
  }

  /** Marks x free; false when it was not taken. */
  delete(x: bigint): boolean {
    const n = this.containing(x);
    if (!n) return false;
    if (n.lo === n.hi) {
      this.root = removeNode(this.root, n.lo);
      this.extentTotal--;
    } else if (x === n.lo) {
      n.lo = x + 1n;
    } else if (x === n.hi) {
      n.hi = x - 1n;
    } else {
      const hi = n.hi;
      n.hi = x - 1n;
      this.root = insertNode(this.root, { lo: x + 1n, hi, left: null, right: null, height: 1 });
      this.extentTotal++;
    }
    this.count--;
    return true;
  }

  /** The first free address in [from, to], or null when all of it is taken. */
  firstFree(from: bigint, to: bigint): bigint | null {
    if (from > to) return null;
    const n = this.containing(from);
    const candidate = n ? n.hi + 1n : from;
    return candidate <= to ? candidate : null;
  }

  /** The taken extents in order, for reports (orphans); O(k) in the extents visited. */
  *extents(): Generator<[bigint, bigint]> {
    const stack: Extent[] = [];
    let n = this.root;
    while (n || stack.length > 0) {
      while (n) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop()!;
      yield [top.lo, top.hi];
      n = top.right;
    }
  }

  /** How many taken addresses lie in [from, to]; O(k) in the extents touched, for reports. */
  countIn(from: bigint, to: bigint): number {
    let total = 0n;
    const walk = (n: Extent | null): void => {
      if (!n) return;
      if (n.lo > from) walk(n.left);
      const lo = n.lo > from ? n.lo : from;
      const hi = n.hi < to ? n.hi : to;
      if (lo <= hi) total += hi - lo + 1n;
      if (n.hi < to) walk(n.right);
    };
    walk(this.root);
    return Number(total);
  }
}
