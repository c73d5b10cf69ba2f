/**
 * The plugin's calls: add, del, check, gc, status, each validating its body before the core
 * sees it, and the forwarded command (cni-command.ts) that runs them for a plugin in this
 * process. One table of calls serves both, so a request answers the same either way.
 */
import { type Context, Hono } from "hono";
import { Paths } from "../protocol.ts";
import { COMMAND_PATH } from "../protocol-command.ts";
import { AddRequestSchema, CheckRequestSchema, DelRequestSchema, GcRequestSchema } from "../protocol-requests.ts";
import { VERSION } from "../version.ts";
import { commandHandler } from "./cni-command.ts";
import { readJson, validRequest } from "./http-errors.ts";
import type { Engine } from "../engine/engine.ts";
import type { StoreHealth } from "./store-health.ts";

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

/** `noteFailure`: what the app does with a failure besides answering it (health, logs). */
export function cniRoutes(engine: Engine, health: StoreHealth | undefined, noteFailure: (c: Context, err: unknown) => void): Hono {
  const calls = cniCalls(engine, health);
  const post = (path: string) => async (c: Context) => c.json((await calls[path]!(await readJson(c))) as object);
  const v1 = (path: string) => path.slice("/v1".length);
  return new Hono()
    .post(v1(Paths.add), post(Paths.add))
    .post(v1(Paths.del), post(Paths.del))
    .post(v1(Paths.check), post(Paths.check))
    .post(v1(Paths.gc), post(Paths.gc))
    .get(v1(Paths.status), async (c) => c.json(await statusBody(engine, health)))
    .post(v1(COMMAND_PATH), commandHandler(calls, noteFailure));
}
