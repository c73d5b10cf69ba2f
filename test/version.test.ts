import { expect, test } from "bun:test";
import pkg from "../package.json";
import { VERSION } from "../src/version.ts";

test("the binary reports package.json's version", () => {
  expect(VERSION).toBe(pkg.version);
});
