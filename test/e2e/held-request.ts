/**
 * A request a test can hold open inside the daemon: it is sent over its own unix-socket
 * connection with `Expect: 100-continue` and all of its body but the last byte. Bun answers
 * "100 Continue" only once the request's handler is running, so `reached` proves the daemon
 * is serving it; `finish()` sends the last byte and resolves with the whole answer (or with
 * status 0 and why, if the daemon closed the connection without one).
 */
import type { Socket, SocketHandler } from "bun";

export interface Answer {
  status: number;
  body: any;
  /** Why there is no answer, when status is 0. */
  error?: string;
}

export interface HeldRequest {
  /** Resolves when the daemon's handler runs this request; rejects if the connection ends first. */
  reached: Promise<void>;
  finish(): Promise<Answer>;
}

const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

function parse(raw: string): Answer | undefined {
  const text = raw.startsWith(CONTINUE) ? raw.slice(CONTINUE.length) : raw;
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...headers] = text.slice(0, end).split("\r\n");
  const length = Number(headers.find((h) => /^content-length:/i.test(h))?.split(":")[1] ?? Number.NaN);
  const body = text.slice(end + 4);
  if (!(Buffer.byteLength(body) >= length)) return undefined;
  const status = Number(statusLine!.split(" ")[1]);
  try {
    return { status, body: JSON.parse(body) };
  } catch {
    return { status, body };
  }
}

/** A unix socket's path, or a TCP listener (the admin listener). */
export type Target = string | { hostname: string; port: number };
const connect = (target: Target, socket: SocketHandler<undefined>): Promise<Socket<undefined>> =>
  typeof target === "string" ? Bun.connect({ unix: target, socket }) : Bun.connect({ ...target, socket });

export async function holdRequest(target: Target, path: string, body: string): Promise<HeldRequest> {
  let raw = "";
  let closed: string | undefined;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  const conn = await connect(target, {
    data(_s, data) {
      raw += data.toString();
      wake();
    },
    close() {
      closed ??= "the daemon closed the connection without an answer";
      wake();
    },
    error(_s, err) {
      closed = `connection error: ${err.message}`;
      wake();
    },
  });
  const bytes = Buffer.from(body);
  const host = typeof target === "string" ? "ipamd" : `${target.hostname}:${target.port}`; // what a client names
  conn.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
  conn.write(bytes.subarray(0, bytes.length - 1));
  const until = async <T>(ready: () => T | undefined): Promise<T> => {
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      if (closed) throw new Error(closed);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const reached = until(() => (raw.startsWith(CONTINUE) ? true : undefined)).then(() => undefined);
  reached.catch(() => undefined); // a caller that never awaits it must not see an unhandled rejection
  return {
    reached,
    async finish() {
      conn.write(bytes.subarray(bytes.length - 1));
      try {
        return await until(() => parse(raw));
      } catch (err) {
        return { status: 0, body: raw, error: (err as Error).message };
      } finally {
        conn.end();
      }
    },
  };
}

/** Whether a new connection is accepted right now. */
export async function accepts(target: Target): Promise<boolean> {
  try {
    const conn = await connect(target, { data() {} });
    conn.end();
    return true;
  } catch {
    return false;
  }
}
