import { expect, test } from "bun:test";
import { readableCount } from "../src/readable.ts";

test("counts a person can read: separators, then powers of two, then exponents", () => {
  expect(readableCount("65533")).toBe("65,533");
  expect(readableCount(999_999_999)).toBe("999,999,999");
  expect(readableCount(2n ** 32n)).toBe("2^32");
  expect(readableCount("18446744073709551614")).toBe("≈2^64");
  expect(readableCount(2n ** 64n + 5n)).toBe("≈2^64");
  expect(readableCount(3n * 2n ** 62n)).toBe("1.38e19");
  expect(readableCount(2n ** 128n - 2n)).toBe("≈2^128");
});
