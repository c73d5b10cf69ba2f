/**
 * The plugin's calls on the unix socket (add, del, check, gc, status, and the forwarded
 * command) answered without the HTTP framework the admin API uses: under 256 clients, Hono's
 * context, middleware chain and response building cost a tenth of the daemon's CPU per
 * request. Each still validates its body before the core sees it, takes the read gate's CNI
 * turn (read-gate.ts), answers failures with the one error shape (http-errors.ts), and is
 * timed, counted and logged like every request (observability.ts). One table of calls serves
 * the routes and the commands the daemon runs for a plugin (cni-command.ts).
 */
import type { ConsolaInstance } from "consola/core";
import { Paths } from "../protocol.ts";
import { COMMAND_PATH } from "../protocol-command.ts";
import { AddRequestSchema, CheckRequestSchema, DelRequestSchema, GcRequestSchema } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { commandAnswer } from "./cni-command.ts";
import { errorAnswer, readJson, validRequest } from "./http-errors.ts";
import type { DaemonMetrics } from "./metrics.ts";
import { commandOf, recordRequest, requestIdOf } from "./observability.ts";
import type { ReadGate } from "./read-gate.ts";
import type { Engine } from "../engine/engine.ts";
import { STORAGE_FAULT_HEADER, type StoreHealth } from "./store-health.ts";

/** STATUS: the daemon answers, and its store can persist (else code 50). */
export async function statusBody(engine: Engine, health: StoreHealth | undefined) {
  await health?.requireAvailable();
  return { version: VERSION, allocations: engine.allocationCount };
}

/** One of the plugin's calls: a request body (not yet validated) in, the answer's body out. */
export type CniCall = (body: unknown) => Promise<unknown>;

export function cniCalls(engine: Engine, health: StoreHealth | undefined): Record<string, CniCall> {
  return {
    [Paths.add]: async (body) => ({ ips: await engine.add(validRequest(AddRequestSchema, body)) }),
    [Paths.del]: async (body) => {
      await engine.del(validRequest(DelRequestSchema, body));
      return {};
    },
    [Paths.check]: async (body) => ({ ips: await engine.check(validRequest(CheckRequestSchema, body)) }),
    [Paths.gc]: async (body) => ({ released: await engine.gc(validRequest(GcRequestSchema, body)) }),
    [Paths.status]: () => statusBody(engine, health),
  };
}

/** An answer before it is a Response; `error`, `command` and `storageFault` are for the telemetry. */
export interface CniAnswer {
  status: number;
  text: string;
  headers?: Record<string, string>;
  error?: { code?: number; msg?: string };
  command?: string;
  storageFault?: boolean;
}

export interface CniOptions {
  health?: StoreHealth;
  gate: ReadGate;
  metrics?: DaemonMetrics;
  log?: ConsolaInstance;
  /** What a failure means besides its answer (health, a bug's log line); true: a storage fault. */
  noteFailure: (err: unknown) => boolean;
}

export type CniHandler = (req: Request) => Promise<Response>;

/** The handlers by "METHOD /path". */
export function cniHandlers(engine: Engine, options: CniOptions): Map<string, CniHandler> {
  const calls = cniCalls(engine, options.health);
  const json = (path: string) => async (req: Request): Promise<CniAnswer> => ({ status: 200, text: JSON.stringify(await calls[path]!(await readJson(req))) });
  const routes: [string, string, (req: Request) => Promise<CniAnswer>][] = [
    ["POST", Paths.add, json(Paths.add)],
    ["POST", Paths.del, json(Paths.del)],
    ["POST", Paths.check, json(Paths.check)],
    ["POST", Paths.gc, json(Paths.gc)],
    ["GET", Paths.status, async () => ({ status: 200, text: JSON.stringify(await calls[Paths.status]!(undefined)) })],
    ["POST", COMMAND_PATH, commandAnswer(calls, options.noteFailure)],
  ];
  return new Map(routes.map(([method, path, handle]) => [`${method} ${path}`, served(method, path, handle, options)]));
}

/** A handler with what every request gets: the gate's turn, the error shape, a request id, telemetry. */
function served(method: string, path: string, handle: (req: Request) => Promise<CniAnswer>, options: CniOptions): CniHandler {
  return async (req) => {
    const started = performance.now();
    const id = requestIdOf(req.headers.get("x-request-id"));
    let answer: CniAnswer;
    let storageFault = false;
    try {
      answer = await options.gate.cniCall(() => handle(req));
      storageFault = answer.storageFault ?? false;
    } catch (err) {
      storageFault = options.noteFailure(err);
      const { status, body } = errorAnswer(err);
      answer = { status, text: JSON.stringify(body), error: body };
    }
    if (options.metrics && options.log) {
      const command = answer.command ?? commandOf(path);
      recordRequest(options.metrics, options.log, { method, path, command, id, started, status: answer.status, error: answer.error, storageFault });
    }
    const headers: Record<string, string> = { "content-type": "application/json", "x-request-id": id, ...answer.headers };
    if (storageFault) headers[STORAGE_FAULT_HEADER] = "1";
    return new Response(answer.text, { status: answer.status, headers });
  };
}
