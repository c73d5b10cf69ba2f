/**
 * `serve --admin-listen ADDR:PORT`: /metrics, the read-only admin API and the dashboard over
 * TCP, for Prometheus and for people. On loopback it may be plain HTTP; anywhere else it
 * requires TLS with client certificates (--tls-cert, --tls-key, --client-ca). Mutating calls
 * (release, gc, import, reload) are allowed only over the unix socket or from a client that
 * presented a certificate signed by the client CA. Every request must name the listener
 * itself (or an --admin-host name) in its Host header: see admin-hosts.ts.
 */
import type { Server } from "bun";
import { ErrorCode, IpamError } from "../errors.ts";
import { BODY_BACKSTOP_BYTES } from "./http-errors.ts";
import { adminHostNames, hostCheck, LOOPBACK } from "./admin-hosts.ts";
import { type AppOptions, createApp } from "./app.ts";
import type { Engine } from "../engine/engine.ts";

export interface AdminListenOptions {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
  /** --admin-host values: more names the listener answers to (comma-separated, repeatable). */
  hosts?: readonly string[];
}

export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new IpamError(ErrorCode.InvalidNetworkConfig, `--admin-listen must be ADDR:PORT (or [IPv6]:PORT), not "${listen}"`);
  return { hostname: m[1] ?? m[2]!, port };
}

async function pem(path: string, what: string): Promise<string> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new IpamError(ErrorCode.IoFailure, `${what} ${path} does not exist`);
  return file.text();
}

export async function startAdminListener(engine: Engine, options: AdminListenOptions, appOptions: AppOptions): Promise<Server<undefined>> {
  const { hostname, port } = parseListen(options.listen);
  const tls = options.tlsCert || options.tlsKey || options.clientCa;
  if (!LOOPBACK.test(hostname) && !(options.tlsCert && options.tlsKey && options.clientCa)) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, `--admin-listen ${options.listen} is not loopback: it needs --tls-cert, --tls-key and --client-ca (client certificates are required)`);
  }
  if (tls && !(options.tlsCert && options.tlsKey && options.clientCa)) {
    throw new IpamError(ErrorCode.InvalidNetworkConfig, "TLS on the admin listener needs all of --tls-cert, --tls-key and --client-ca");
  }
  const { networkInterfaces } = await import("node:os");
  const localAddresses = () => Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  let server: Server<undefined> | undefined;
  const checkHost = hostCheck({ hostname, port: () => server?.port ?? port, names: adminHostNames(options.hosts ?? []), localAddresses });
  const app = createApp(engine, {
    ...appOptions,
    adminOnly: true,
    admit: (c) => checkHost(c.req.header("host")),
    // With TLS every client has presented a certificate from the client CA (the handshake
    // refuses others), so it may change state; plain loopback HTTP may only read.
    requireMutation: tls
      ? (c) => {
          // A browser holding a client certificate must not be talked into a mutation by
          // another site: such a request is never JSON-typed and is marked cross-site.
          const json = c.req.header("content-type")?.startsWith("application/json");
          const crossSite = c.req.header("sec-fetch-site") === "cross-site";
          if (!json || crossSite) throw new IpamError(ErrorCode.Forbidden, "mutating admin calls need content-type: application/json and may not come from another site");
        }
      : () => {
          throw new IpamError(ErrorCode.Forbidden, "this listener is read-only: release, gc, import and reload go over the unix socket or an mTLS client");
        },
  });
  server = Bun.serve({
    hostname,
    port,
    fetch: app.fetch,
    maxRequestBodySize: BODY_BACKSTOP_BYTES,
    ...(tls
      ? { tls: { cert: await pem(options.tlsCert!, "--tls-cert"), key: await pem(options.tlsKey!, "--tls-key"), ca: await pem(options.clientCa!, "--client-ca"), requestCert: true, rejectUnauthorized: true } }
      : {}),
  });
  return server;
}
