/**
 * Counts as a person reads them, for the CLI and the dashboard: 65,533 with separators, and
 * a count too long to read as its power of two — a /64's 18446744073709551614 is ≈2^64.
 * Exact counts stay in the JSON answers (as decimal strings).
 */
const LONGEST_EXACT = 10n ** 9n;

export function readableCount(count: string | bigint | number): string {
  const n = BigInt(count);
  if (n < LONGEST_EXACT) return n.toLocaleString("en");
  const bits = n.toString(2).length;
  // The nearest power of two, and how far off it is: within a thousandth, the power says it.
  const [below, above] = [1n << BigInt(bits - 1), 1n << BigInt(bits)];
  const [power, off] = n - below <= above - n ? [bits - 1, n - below] : [bits, above - n];
  if (off === 0n) return `2^${power}`;
  if (off * 1000n < 1n << BigInt(power)) return `≈2^${power}`;
  return Number(n).toExponential(2).replace("e+", "e");
}
