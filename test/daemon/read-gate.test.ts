import { describe, expect, test } from "bun:test";
import { ErrorCode, IpamError } from "../../src/errors.ts";
import { ReadGate } from "../../src/daemon/read-gate.ts";

/** A read that runs until its release() is called, noting when it started. */
function heldRead(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { read: async () => { log.push(`${name} start`); await done; log.push(`${name} end`); return name; }, release };
}

describe("admin read gate", () => {
  test("reads take turns in arrival order, one at a time", async () => {
    const gate = new ReadGate();
    const log: string[] = [];
    const reads = ["a", "b", "c"].map((n) => heldRead(log, n));
    const results = reads.map((r) => gate.run(r.read));
    await Bun.sleep(1);
    expect(log).toEqual(["a start"]);
    reads[0]!.release();
    await Bun.sleep(1);
    expect(log).toEqual(["a start", "a end", "b start"]);
    reads[1]!.release();
    reads[2]!.release();
    expect(await Promise.all(results)).toEqual(["a", "b", "c"]);
    expect(log).toEqual(["a start", "a end", "b start", "b end", "c start", "c end"]);
  });

  test("work that arrived during a read runs before the next read starts", async () => {
    const gate = new ReadGate();
    const log: string[] = [];
    const first = heldRead(log, "first");
    const second = heldRead(log, "second");
    const results = [gate.run(first.read), gate.run(second.read)];
    await Bun.sleep(1);
    // A pod start's request: I/O the event loop takes up on its next turn.
    setImmediate(() => log.push("pod start"));
    first.release();
    await Bun.sleep(5);
    expect(log).toEqual(["first start", "first end", "pod start", "second start"]);
    second.release();
    await Promise.all(results);
  });

  test("a pod start that came in the same turn as a dozen readers waits for none of their pages", async () => {
    const gate = new ReadGate();
    const log: string[] = [];
    // One turn of the event loop taking up the requests that came in together: each request's
    // handler runs, then its promises settle (the microtasks drain), then the next request's.
    const settle = async () => {
      for (let i = 0; i < 20; i++) await null;
    };
    const reads: Promise<unknown>[] = [];
    let cni: Promise<unknown> | undefined;
    await new Promise<void>((turnDone) =>
      setImmediate(async () => {
        for (let r = 0; r < 12; r++) {
          reads.push(gate.run(async () => log.push(`page ${r}`)));
          await settle();
        }
        cni = gate.cniCall(async () => log.push("pod start"));
        await settle();
        turnDone();
      }),
    );
    await Promise.all([cni, ...reads]);
    expect(log[0]).toBe("pod start");
    expect(log.slice(1)).toEqual(Array.from({ length: 12 }, (_, r) => `page ${r}`));
  });

  test("a failed read gives its turn back", async () => {
    const gate = new ReadGate();
    await expect(gate.run(async () => { throw new Error("store down"); })).rejects.toThrow("store down");
    expect(await gate.run(async () => "next")).toBe("next");
  });

  test("beyond the waiting bound a reader is told to try again (code 11), not queued", async () => {
    const gate = new ReadGate({ maxWaiting: 2 });
    const log: string[] = [];
    const held = heldRead(log, "held");
    const queued = [gate.run(held.read), gate.run(async () => 1), gate.run(async () => 2)];
    const refused = await gate.run(async () => 3).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IpamError);
    expect((refused as IpamError).code).toBe(ErrorCode.TryAgainLater);
    held.release();
    expect(await Promise.all(queued)).toEqual(["held", 1, 2]);
  });

  test("with two reads at once, the waiting bound counts those queued behind both", async () => {
    const gate = new ReadGate({ concurrent: 2, maxWaiting: 1 });
    const log: string[] = [];
    const [a, b] = [heldRead(log, "a"), heldRead(log, "b")];
    const queued = [gate.run(a.read), gate.run(b.read), gate.run(async () => "c")];
    const refused = await gate.run(async () => "d").catch((e: unknown) => e);
    expect((refused as IpamError).code).toBe(ErrorCode.TryAgainLater);
    await Bun.sleep(1);
    expect(log).toEqual(["a start", "b start"]);
    a.release();
    b.release();
    expect(await Promise.all(queued)).toEqual(["a", "b", "c"]);
  });

  /** A CNI request held in flight until release() (the middleware as the app mounts it). */
  function heldCni(gate: ReadGate, log: string[]) {
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const finished = gate.cni()(undefined as never, async () => { log.push("cni start"); await done; log.push("cni end"); });
    return { release, finished };
  }

  test("no read starts while a CNI request is in flight", async () => {
    const gate = new ReadGate();
    const log: string[] = [];
    const cni = heldCni(gate, log);
    const read = gate.run(async () => log.push("read"));
    await Bun.sleep(20);
    expect(log).toEqual(["cni start"]);
    cni.release();
    await cni.finished;
    await read;
    expect(log).toEqual(["cni start", "cni end", "read"]);
  });

  test("a read deferred past maxDeferMs runs even while CNI requests keep coming", async () => {
    const gate = new ReadGate({ maxDeferMs: 30 });
    const log: string[] = [];
    const cni = heldCni(gate, log);
    const started = performance.now();
    await gate.run(async () => log.push("read"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(log).toEqual(["cni start", "read"]);
    cni.release();
    await cni.finished;
  });
});
