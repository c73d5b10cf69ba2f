import { describe, expect, test } from "bun:test";
import { parseResolvConf, renderResult } from "../../src/cni/result.ts";
import { SUPPORTED_VERSIONS } from "../../src/cni/spec.ts";
import type { AllocatedIp } from "../../src/protocol.ts";

const ips: AllocatedIp[] = [
  { family: 4, address: "10.0.0.2", prefix: 24, gateway: "10.0.0.1" },
  { family: 6, address: "fd00::2", prefix: 64, gateway: "fd00::1" },
];
const routes = [{ dst: "0.0.0.0/0", gw: "10.0.0.1", mtu: 1400, priority: 5 }];

describe("CNI result for every supported version", () => {
  for (const version of SUPPORTED_VERSIONS) {
    test(`${version}`, () => {
      const result = renderResult(version, ips, routes, {});
      const legacy = version.startsWith("0.");
      expect(result.cniVersion).toBe(version);
      expect(result.ips).toEqual([
        { ...(legacy ? { version: "4" } : {}), address: "10.0.0.2/24", gateway: "10.0.0.1" },
        { ...(legacy ? { version: "6" } : {}), address: "fd00::2/64", gateway: "fd00::1" },
      ] as typeof result.ips);
      // Route attributes beyond dst/gw exist only from 1.1.0 on.
      expect(result.routes).toEqual(version === "1.1.0" ? routes : [{ dst: "0.0.0.0/0", gw: "10.0.0.1" }]);
      expect(JSON.stringify(result)).not.toContain("interface");
    });
  }

  test("no routes configured: no routes key; dns passes through", () => {
    const result = renderResult("1.0.0", ips.slice(0, 1), undefined, { nameservers: ["10.0.0.53"] });
    expect("routes" in result).toBe(false);
    expect(result.dns).toEqual({ nameservers: ["10.0.0.53"] });
  });
});

describe("resolvConf", () => {
  test("reads nameservers, domain, search and options; skips comments", () => {
    const dns = parseResolvConf("# generated\nnameserver 10.96.0.10\nnameserver fd00::10 ; second\ndomain cluster.local\nsearch a.svc b.svc\noptions ndots:5 edns0\n");
    expect(dns).toEqual({ nameservers: ["10.96.0.10", "fd00::10"], domain: "cluster.local", search: ["a.svc", "b.svc"], options: ["ndots:5", "edns0"] });
  });
});
