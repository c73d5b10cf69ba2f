/**
 * Other nodes' blocks waiting unread in the cache (cache.ts): which change may wait, and what
 * waits, the longest-waiting first, within a bound on its text.
 *
 * Most writes a daemon's watch brings are other nodes' pod starts in their own blocks. Reading
 * each one (the schema, the block's view, its indexes) cost every daemon ~0.2 ms of CPU per
 * write, cold (the JSON parse before it: 0.04), on every node, for blocks nothing on the node
 * asks about until much later, if ever. A change of lines only waits as the watch sent it;
 * the cache reads it when a question could need it.
 */
import type { BlockSpec } from "../../kube/schemas/store.ts";

/** The parts of a block's spec besides its lines: a change to any of them is read at once. */
const BESIDES_LINES = ["space", "cidr", "node", "holds", "bindings", "pending", "commits"] as const;
const SPEC_KEYS = new Set<string>(["allocations", ...BESIDES_LINES]);

/**
 * How much allocations text may wait, by default: a lookup searches all of it (~1.3 µs per 8 KB
 * here), so past this the block that has waited longest is read to make room.
 */
const WAITING_TEXT_LIMIT = 256 * 1024;

/**
 * The allocations text of a block's new spec (as a watch event sent it, unchecked) when all
 * that changed from the spec read is its lines; undefined otherwise. A text with any escape
 * in it ("%") is read at once: in a text without one, every value stands as it is, so a plain
 * search finds it (the parser takes any escape, even of a letter, as a hand or another writer
 * may have made it).
 */
export function linesOnlyChange(read: BlockSpec, sent: unknown): string | undefined {
  if (typeof sent !== "object" || sent === null) return undefined;
  const text = (sent as { allocations?: unknown }).allocations ?? "";
  if (typeof text !== "string" || text.includes("%")) return undefined;
  for (const key of Object.keys(sent)) if (!SPEC_KEYS.has(key)) return undefined;
  for (const key of BESIDES_LINES) if (!Bun.deepEquals((sent as Record<string, unknown>)[key], read[key])) return undefined;
  return text;
}

/** A block's newest version as a watch event sent it, not read yet. */
export interface Waiting {
  object: unknown;
  version: bigint;
  /** Its allocations text, searched for a lookup's value. */
  text: string;
}

export class WaitingBlocks {
  /** The longest waiting first. */
  private readonly byName = new Map<string, Waiting>();
  private textLength = 0;

  constructor(private readonly textLimit = WAITING_TEXT_LIMIT) {}

  get size(): number {
    return this.byName.size;
  }

  get(name: string): Waiting | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Keeps a block's newest version; returns the blocks to read now to make room, the longest waiting first. */
  keep(name: string, waiting: Waiting): string[] {
    this.drop(name);
    this.byName.set(name, waiting);
    this.textLength += waiting.text.length;
    const room: string[] = [];
    let length = this.textLength;
    for (const [other, { text }] of this.byName) {
      if (length <= this.textLimit || other === name) break;
      room.push(other);
      length -= text.length;
    }
    return room;
  }

  /** Takes a block out of waiting; what waited, if anything. */
  drop(name: string): Waiting | undefined {
    const waiting = this.byName.get(name);
    if (!waiting) return undefined;
    this.byName.delete(name);
    this.textLength -= waiting.text.length;
    return waiting;
  }

  /** The blocks whose text holds a value (no waiting text escapes one: see linesOnlyChange). */
  holding(value: string): string[] {
    return [...this.byName].filter(([, { text }]) => text.includes(value)).map(([name]) => name);
  }
}
