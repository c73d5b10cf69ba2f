/**
 * Renders an allocation as a CNI result in the netconf's own version: 0.3.x and 0.4.0
 * results carry `ips[].version`, 1.x results do not, and route attributes beyond dst/gw
 * exist only from 1.1.0. IPAM results never name an interface.
 */
import type { AllocatedIp } from "../protocol.ts";
import { compareVersions, type Route } from "./spec.ts";

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  ips: { version?: "4" | "6"; address: string; gateway?: string }[];
  routes?: Route[];
  dns: Dns;
}

export function renderResult(cniVersion: string, ips: AllocatedIp[], routes: Route[] | undefined, dns: Dns): CniResult {
  const legacy = compareVersions(cniVersion, "1.0.0") < 0;
  const withRouteAttributes = compareVersions(cniVersion, "1.1.0") >= 0;
  const result: CniResult = {
    cniVersion,
    ips: ips.map((ip) => ({
      ...(legacy ? { version: ip.family === 4 ? ("4" as const) : ("6" as const) } : {}),
      address: `${ip.address}/${ip.prefix}`,
      ...(ip.gateway ? { gateway: ip.gateway } : {}),
    })),
    dns,
  };
  if (routes && routes.length > 0) {
    result.routes = routes.map((r) => {
      const route: Route = { dst: r.dst };
      if (r.gw) route.gw = r.gw;
      if (withRouteAttributes) {
        for (const key of ["mtu", "advmss", "priority", "table", "scope"] as const) {
          if (r[key] !== undefined) route[key] = r[key];
        }
      }
      return route;
    });
  }
  return result;
}

/** host-local's reading of a resolv.conf-style file into the result's dns section. */
export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [keyword, ...values] = line.split(/\s+/);
    if (!keyword || values.length === 0) continue;
    switch (keyword) {
      case "nameserver":
        (dns.nameservers ??= []).push(values[0]!);
        break;
      case "domain":
        dns.domain = values[0];
        break;
      case "search":
        dns.search = values;
        break;
      case "options":
        (dns.options ??= []).push(...values);
        break;
    }
  }
  return dns;
}
