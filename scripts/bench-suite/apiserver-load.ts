/**
 * What the API server did, from its own metrics (GET /metrics): requests by verb and resource
 * (apiserver_request_total), and watch events sent with their bytes (apiserver_watch_events_*),
 * so a benchmark can say what one ADD costs the API server, measured on the server side.
 */
import type { KubeClient } from "../../src/kube/client.ts";

export interface ApiserverCounters {
  /** "VERB resource" → requests (dry runs and the admin's own requests included: take deltas). */
  requests: Map<string, number>;
  watchEvents: Map<string, number>;
  watchBytes: Map<string, number>;
}

const sample = /^([a-z_]+)\{([^}]*)\} ([0-9.e+-]+)$/;

function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

export async function apiserverCounters(client: KubeClient): Promise<ApiserverCounters> {
  const text = await (await client.transport.open("GET", "/metrics")).text();
  const out: ApiserverCounters = { requests: new Map(), watchEvents: new Map(), watchBytes: new Map() };
  const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n);
  for (const line of text.split("\n")) {
    const m = sample.exec(line);
    if (!m) continue;
    const labels = labelsOf(m[2]!);
    const value = Number(m[3]);
    if (m[1] === "apiserver_request_total" && labels.resource) add(out.requests, `${labels.verb} ${labels.resource}`, value);
    else if (m[1] === "apiserver_watch_events_total" && labels.resource) add(out.watchEvents, labels.resource, value);
    else if (m[1] === "apiserver_watch_events_sizes_sum" && labels.resource) add(out.watchBytes, labels.resource, value);
  }
  return out;
}

/** after − before, per key, leaving out what did not change. */
export function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of after) if (n - (before.get(key) ?? 0) > 0) out.set(key, n - (before.get(key) ?? 0));
  return out;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE", "APPLY"]);
export const writesOf = (requests: Map<string, number>): number => [...requests].filter(([k]) => WRITES.has(k.split(" ")[0]!)).reduce((n, [, v]) => n + v, 0);
export const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
