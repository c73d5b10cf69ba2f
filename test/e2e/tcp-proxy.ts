/**
 * A loopback TCP relay to a real server (here an etcd member) that a test can cut and
 * restore: the network path between a daemon and etcd failing while etcd itself runs on,
 * so etcd's clocks (lease TTLs) keep going. Bytes pass through untouched (TLS too). The
 * relay is removed by the harness cleanup.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { onCleanup } from "./harness.ts";

export interface TcpProxy {
  port: number;
  /** Closes every relayed connection and refuses new ones. */
  cut(): Promise<void>;
  /** Accepts and relays again, on the same port. */
  restore(): Promise<void>;
}

export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const relay = (client: Socket) => {
    const upstream = connect(targetPort, "127.0.0.1");
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      open.add(s);
      s.on("error", end).on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer(relay);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve(server));
    });
  let server: Server | null = await listen(0);
  const port = (server.address() as { port: number }).port;
  const cut = async () => {
    const closing = server;
    server = null;
    for (const s of open) s.destroy();
    open.clear();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  onCleanup(cut);
  return {
    port,
    cut,
    async restore() {
      server ??= await listen(port);
    },
  };
}
