/**
 * HTTP to the API server with Bun's fetch: TLS with the connection's CA and client
 * certificate, a bearer token read per request (it may rotate), JSON both ways, and every
 * failure turned into a typed error (errors.ts). Requests time out; streams (watches) live
 * as long as their caller's signal and the server's timeoutSeconds.
 */
import type { KubeConnection } from "./connection.ts";
import { apiErrorFromResponse, KubeConnectionError, KubeInvalidResponseError } from "./errors.ts";

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** application/json unless said (server-side apply: application/apply-patch+yaml). */
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface TransportOptions {
  /** Deadline of one request (not of a watch stream); 30 s by default. */
  timeoutMs?: number;
  userAgent?: string;
}

export class KubeTransport {
  readonly #tls: BunFetchRequestInitTLS;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(
    readonly connection: KubeConnection,
    options: TransportOptions = {},
  ) {
    const { ca, clientCert, clientKey, insecureSkipTlsVerify, tlsServerName } = connection;
    this.#tls = {
      ...(ca ? { ca } : {}),
      ...(clientCert && clientKey ? { cert: clientCert, key: clientKey } : {}),
      ...(insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
      ...(tlsServerName ? { serverName: tlsServerName } : {}),
    };
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? "ipamd";
  }

  /** One request; resolves with the parsed JSON body of a 2xx answer. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.#timeoutMs);
    const res = await this.open(method, path, { ...options, signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout });
    const text = await res.text().catch((error) => {
      throw new KubeConnectionError(`${method} ${path}: the answer was cut off (${(error as Error).message})`);
    });
    if (text === "") return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new KubeInvalidResponseError(`${method} ${path}: the answer is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** The response of a 2xx answer, body unread (for streams); an error answer throws. */
  async open(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = `${this.connection.server}${path}${queryString(options.query)}`;
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#userAgent };
    const token = this.connection.token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        tls: this.#tls,
        signal: options.signal,
      });
    } catch (error) {
      const reason = (error as Error).name === "TimeoutError" ? "timed out" : (error as Error).message;
      throw new KubeConnectionError(`${method} ${path} to ${this.connection.server}: ${reason}`);
    }
    if (res.ok) return res;
    const body = await res.json().catch(() => null);
    throw apiErrorFromResponse(res.status, body, `${method} ${path}`);
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== "") params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : "";
}
