/**
 * The daemon's body limit (1 MiB) holds however a body arrives: with a content-length it is
 * refused up front; a chunked body (no length known in advance) is counted as it streams in
 * and refused at the limit. Either way the client gets code 6, the log calls it a client
 * error (not a bug), and the daemon keeps serving.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { MAX_BODY_BYTES } from "../../src/protocol.ts";
import { attachmentEnv, cleanup, netconf, runPlugin, startDaemon } from "./harness.ts";

afterEach(cleanup);

/** A JSON-looking body of `total` bytes sent in 64 KiB chunks: fetch sends it chunked. */
function chunkedBody(total: number): ReadableStream<Uint8Array> {
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(new TextEncoder().encode('{"network":"n","pad":"'));
      if (sent >= total) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

/** Status and body, the body parsed when it is JSON and raw otherwise, so a failure shows what came. */
async function answer(res: Response): Promise<{ status: number; body: unknown }> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

const OVER = { status: 413, body: { code: 6, msg: `request body over ${MAX_BODY_BYTES} bytes` } };

describe("request body limit", () => {
  test("a chunked body over 1 MiB is code 6, logged as a client error; the daemon keeps serving", async () => {
    const daemon = await startDaemon();
    const res = await fetch("http://ipamd/v1/cni/add", {
      unix: daemon.socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunkedBody(MAX_BODY_BYTES + 256 * 1024),
    });
    expect(await answer(res)).toEqual(OVER);
    // The next request is served as usual.
    const add = await runPlugin(attachmentEnv("ADD", "after-big-body"), netconf(daemon.socket));
    expect(add.exitCode).toBe(0);
    expect(add.json.ips[0].address).toBe("10.20.0.2/24");
    const log = daemon.stderr();
    expect(log).toContain(`failed: request body over ${MAX_BODY_BYTES} bytes`);
    expect(log).not.toContain("unexpected error");
  }, 20_000);

  test("a body with a content-length over 1 MiB gets the same structured answer", async () => {
    const daemon = await startDaemon();
    const res = await fetch("http://ipamd/v1/cni/add", { unix: daemon.socket, method: "POST", body: `{"pad":"${"x".repeat(MAX_BODY_BYTES + 1000)}"}` });
    expect(await answer(res)).toEqual(OVER);
    expect((await runPlugin(attachmentEnv("ADD", "after-long-body"), netconf(daemon.socket))).exitCode).toBe(0);
  }, 20_000);

  test("a chunked body just under 1 MiB is read whole (and judged as JSON)", async () => {
    const daemon = await startDaemon();
    const res = await fetch("http://ipamd/v1/cni/add", {
      unix: daemon.socket,
      method: "POST",
      body: chunkedBody(MAX_BODY_BYTES - 128 * 1024),
    });
    // Not over the limit: it reaches the JSON parser, which finds the string unterminated.
    expect(await answer(res)).toEqual({ status: 400, body: { code: 6, msg: "request body is not valid JSON" } });
  }, 20_000);
});
