/** The Host check's parsing and matching, for the forms an end-to-end test cannot reach (IPv6, wildcard binds). */
import { describe, expect, test } from "bun:test";
import { adminHostNames, hostCheck, parseHost } from "../../src/daemon/admin-hosts.ts";

const allows = (check: (host: string | undefined) => void, host: string | undefined) => {
  try {
    check(host);
    return true;
  } catch (err) {
    expect((err as { code?: number }).code).toBe(104);
    return false;
  }
};

describe("Host header parsing", () => {
  test("names, ports, bracketed IPv6, a final dot; anything else is no host", () => {
    expect(parseHost("Example.COM:9464")).toEqual({ name: "example.com", port: 9464 });
    expect(parseHost("example.com.")).toEqual({ name: "example.com" });
    expect(parseHost("[0:0::1]:9464")).toEqual({ name: "::1", port: 9464 });
    expect(parseHost("[fd00::0a]")).toEqual({ name: "fd00::a" });
    for (const bad of ["", "::1", "[::1", "a b", "host:port", "example.com:99999x", "user@example.com", "[evil.example]"]) expect(parseHost(bad)).toBeNull();
  });

  test("--admin-host entries are split on commas and normalized; a bad one names itself", () => {
    expect(adminHostNames(["A.example,b.example.", "[fd00::1]", "10.0.0.5"])).toEqual(["a.example", "b.example", "fd00::1", "10.0.0.5"]);
    expect(() => adminHostNames(["a.example:8080"])).toThrow('--admin-host: "a.example:8080" is not a host name or address');
  });
});

describe("which Host values a listener answers", () => {
  test("an IPv6 loopback listener: its address in brackets, with or without its port, and localhost", () => {
    const check = hostCheck({ hostname: "::1", port: () => 9464, names: [], localAddresses: () => [] });
    for (const host of ["[::1]:9464", "[::1]", "[0::1]", "localhost:9464"]) expect(allows(check, host)).toBe(true);
    for (const host of ["[::1]:80", "evil.example", "127.0.0.1:9464", undefined]) expect(allows(check, host)).toBe(false);
  });

  test("a wildcard listener: the node's addresses as they are at the time of the request", () => {
    let addresses = ["127.0.0.1", "10.0.0.7"];
    const check = hostCheck({ hostname: "0.0.0.0", port: () => 9464, names: ["node-1"], localAddresses: () => addresses });
    for (const host of ["10.0.0.7:9464", "127.0.0.1", "node-1", "localhost"]) expect(allows(check, host)).toBe(true);
    expect(allows(check, "10.0.0.8:9464")).toBe(false);
    addresses = [...addresses, "10.0.0.8"]; // an address the node gained after start
    expect(allows(check, "10.0.0.8:9464")).toBe(true);
    expect(allows(check, "evil.example:9464")).toBe(false);
  });

  test("a listener on a non-loopback address does not answer localhost", () => {
    const check = hostCheck({ hostname: "10.0.0.7", port: () => 9464, names: [], localAddresses: () => ["10.0.0.7", "127.0.0.1"] });
    expect(allows(check, "10.0.0.7:9464")).toBe(true);
    expect(allows(check, "localhost:9464")).toBe(false);
    expect(allows(check, "127.0.0.1:9464")).toBe(false);
  });
});
