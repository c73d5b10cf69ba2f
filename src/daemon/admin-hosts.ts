/**
 * The TCP admin listener's defence against DNS rebinding. A page on evil.example can point
 * its own name at 127.0.0.1 (or at a node's address) and have the visitor's browser read
 * http://evil.example:9464/ as same-origin: the dashboard, /metrics, the admin API. The
 * browser still sends `Host: evil.example`, so the listener answers only a Host that is its
 * own address (with or without its own port), `localhost` when it listens on loopback, or a
 * name the operator gave with --admin-host. A name is trusted because the operator controls
 * what it resolves to; an attacker controls only names of their own.
 */
import { ErrorCode, IpamError } from "../errors.ts";
import { canonicalIp } from "../ipam/address.ts";

/** A DNS name: dot-separated labels of letters, digits, '-' and '_' (as some internal zones use). */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

/** A name or address as Host values are compared: lower case, no final dot, IPs canonical and unbracketed. */
function normalName(text: string): string | null {
  const unbracketed = /^\[(.*)\]$/.exec(text)?.[1];
  if (unbracketed !== undefined) return canonicalIp(unbracketed);
  const ip = canonicalIp(text);
  if (ip) return ip;
  const name = text.toLowerCase().replace(/\.$/, "");
  return DNS_NAME.test(name) ? name : null;
}

/** The names of `--admin-host a,b --admin-host c`, checked; a bad one stops the daemon at start. */
export function adminHostNames(values: readonly string[]): string[] {
  return values.flatMap((value) =>
    value.split(",").map((entry) => {
      const name = normalName(entry.trim());
      if (!name) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--admin-host: "${entry.trim()}" is not a host name or address (a name such as ipamd.example.com, or an IP; no scheme, port or path)`);
      return name;
    }),
  );
}

/** A Host header's name and port; null when it is not `name`, `name:port`, `[v6]` or `[v6]:port`. */
export function parseHost(value: string): { name: string; port?: number } | null {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value);
  const name = m ? normalName(m[1]!) : null;
  if (!name) return null;
  return m![2] === undefined ? { name } : { name, port: Number(m![2]) };
}

export interface HostCheckOptions {
  /** The --admin-listen address (IP or name), and the port it is bound to (known once it is: `:0` picks one). */
  hostname: string;
  port: () => number;
  /** From --admin-host, already normalized by adminHostNames. */
  names: readonly string[];
  /** The node's addresses now; asked only when listening on a wildcard address and the Host is none of the known. */
  localAddresses: () => string[];
}

const WILDCARD = new Set(["0.0.0.0", "::"]);
export const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;

/** Returns the check the listener runs on every request: it throws a 104 for a Host it must not answer. */
export function hostCheck(options: HostCheckOptions): (host: string | undefined) => void {
  const own = normalName(options.hostname) ?? options.hostname.toLowerCase();
  const allowed = new Set<string>([own, ...options.names]);
  const wildcard = WILDCARD.has(own);
  if (wildcard || LOOPBACK.test(own)) allowed.add("localhost");
  if (own === "localhost") for (const ip of ["127.0.0.1", "::1"]) allowed.add(ip);
  const isLocal = (name: string) => {
    if (!wildcard) return false;
    const addresses = options.localAddresses().map((a) => canonicalIp(a));
    return addresses.includes(name);
  };
  return (host) => {
    const parsed = host === undefined ? null : parseHost(host);
    if (parsed && (parsed.port === undefined || parsed.port === options.port()) && (allowed.has(parsed.name) || isLocal(parsed.name))) return;
    const what = host === undefined ? "a request without a Host header" : `Host ${JSON.stringify(host.slice(0, 100))}`;
    throw new IpamError(ErrorCode.Forbidden, `${what} is not this listener's address nor a name given with --admin-host; not served (DNS rebinding defence)`);
  };
}
