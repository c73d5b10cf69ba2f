/**
 * A loopback TCP proxy in front of the test API server, to cut a client off the way a network
 * does: `cut()` drops every open connection (a watch breaks mid-stream), `hold()` also refuses
 * new ones until `release()`. Bytes pass through untouched (TLS ends at the API server, whose
 * certificate is for 127.0.0.1, so it stays valid through the proxy).
 */
import type { Socket, TCPSocketListener } from "bun";
import { onCleanup } from "../e2e/harness.ts";

export interface TcpProxy {
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  cut(): void;
  hold(): void;
  release(): void;
}

interface Pipe {
  upstream: Socket<Pipe> | null;
  /** Bytes the client sent before the upstream connection was open. */
  early: Uint8Array[];
  peer: Socket<Pipe> | null;
}

/** Writes all of `data`; what the kernel does not take now is copied and queued until drain. */
function send(socket: Socket<Pipe>, data: Uint8Array, queues: WeakMap<Socket<Pipe>, Uint8Array[]>): void {
  const queue = queues.get(socket);
  if (queue && queue.length > 0) return void queue.push(data.slice());
  const written = socket.write(data);
  if (written < data.length) queues.set(socket, [...(queue ?? []), data.slice(written)]);
}

function drain(socket: Socket<Pipe>, queues: WeakMap<Socket<Pipe>, Uint8Array[]>): void {
  const queue = queues.get(socket) ?? [];
  while (queue.length > 0) {
    const head = queue[0]!;
    const written = socket.write(head);
    if (written < head.length) return void (queue[0] = head.subarray(written));
    queue.shift();
  }
}

export function startTcpProxy(targetUrl: string): TcpProxy {
  const target = new URL(targetUrl);
  const open = new Set<Socket<Pipe>>();
  const queues = new WeakMap<Socket<Pipe>, Uint8Array[]>();
  let held = false;
  let accepted = 0;
  const close = (s: Socket<Pipe> | null) => s?.end();
  const listener: TCPSocketListener<Pipe> = Bun.listen<Pipe>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { upstream: null, early: [], peer: null };
        if (held) return void client.end();
        accepted++;
        open.add(client);
        Bun.connect<Pipe>({
          hostname: target.hostname,
          port: Number(target.port),
          data: { upstream: null, early: [], peer: client },
          socket: {
            open(upstream) {
              client.data.upstream = upstream;
              open.add(upstream);
              for (const chunk of client.data.early.splice(0)) send(upstream, chunk, queues);
            },
            data(_upstream, chunk) { send(client, chunk, queues); },
            drain(upstream) { drain(upstream, queues); },
            close(upstream) { open.delete(upstream); close(client); },
            error() { close(client); },
          },
        }).catch(() => close(client));
      },
      data(client, chunk) {
        if (client.data.upstream) send(client.data.upstream, chunk, queues);
        else client.data.early.push(chunk.slice());
      },
      drain(client) { drain(client, queues); },
      close(client) { open.delete(client); close(client.data?.upstream ?? null); },
      error(client) { close(client.data?.upstream ?? null); },
    },
  });
  const cut = () => {
    for (const socket of [...open]) socket.terminate();
    open.clear();
  };
  onCleanup(() => {
    cut();
    listener.stop(true);
  });
  return {
    url: `https://127.0.0.1:${listener.port}`,
    get connections() { return accepted; },
    cut,
    hold() { held = true; cut(); },
    release() { held = false; },
  };
}
