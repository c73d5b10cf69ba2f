/**
 * The no-op servers the exec and throughput figures stand beside, each `bun` running a few
 * lines in a process of its own (not the bench's: the bench's own event loop must not delay
 * them), on a unix socket:
 *
 * - the socket floor: reads each body and answers `{"ips":[]}`, nothing else. The peer of the
 *   throughput figures (what the same clients and Bun's HTTP cost before any daemon work) and
 *   the server of the round-trip floor (exec.ts).
 * - the durable floor: the same, but it first writes the body over the start of a file and
 *   fdatasyncs it, as a commit must before an ADD is answered (DESIGN.md rule 4): the least
 *   that any durable answer costs on this disk. Information beside ADD and DEL, no verdict.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { durableSocket, floorSocket, helpers, tmp } from "./common.ts";

const SOCKET_FLOOR = (socket: string) => `Bun.serve({ unix: ${JSON.stringify(socket)}, fetch: async (req) => { await req.arrayBuffer(); return Response.json({ ips: [] }); } });\n`;

const DURABLE_FLOOR = (socket: string, file: string) => `import { fdatasyncSync, openSync, writeSync } from "node:fs";
const fd = openSync(${JSON.stringify(file)}, "w");
Bun.serve({ unix: ${JSON.stringify(socket)}, fetch: async (req) => {
  writeSync(fd, new Uint8Array(await req.arrayBuffer()), 0, undefined, 0);
  fdatasyncSync(fd);
  return Response.json({ ips: [] });
} });
`;

/** The socket floor's process, for its CPU time (exec.ts reads it beside the daemon's). */
export let socketFloorPid = 0;

async function start(name: string, source: string, socket: string): Promise<number> {
  const src = join(tmp, `${name}.ts`);
  await Bun.write(src, source);
  const proc = Bun.spawn([process.execPath, src], { stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  helpers.push(proc);
  // existsSync: Bun.file().exists() is false for a socket.
  for (let i = 0; i < 500 && !existsSync(socket); i++) await Bun.sleep(10);
  if (!existsSync(socket)) throw new Error(`the ${name} server did not open ${socket}`);
  return proc.pid;
}

/** Starts both floors (stopped by cleanup()) and waits for their sockets. */
export async function startFloors(): Promise<void> {
  socketFloorPid = await start("socket-floor", SOCKET_FLOOR(floorSocket), floorSocket);
  await start("durable-floor", DURABLE_FLOOR(durableSocket, join(tmp, "durable-floor.bin")), durableSocket);
}
