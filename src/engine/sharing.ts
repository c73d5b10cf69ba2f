/**
 * Everything that follows from one property of the store: whether other daemons write it too
 * (Store.shared). It is decided here, once, and the engine asks this object — never the store's
 * type or which methods it has.
 */
import { AttachmentHeld, ConflictError, LimitError, type Store } from "../store/store.ts";

export interface Sharing {
  /** Blocks apply: each node allocates from blocks it claimed (see blocks.ts). */
  readonly blocks: boolean;
  /** Bindings are read fresh before use: another node may have made or ended one. */
  readonly freshBindings: boolean;
  /** How often an ADD may lose a race for an address before it answers 11. */
  readonly conflictRetries: number;
  /** A pool that looks exhausted is re-read once: other nodes may have freed addresses. */
  readonly rereadWhenExhausted: boolean;
  /** Memory may lag the store: questions about whole spaces (a reload's space moves) read them again first. */
  readonly memoryMayLag: boolean;
  /** Whether a commit that failed with this error may have applied anyway. */
  mayHaveApplied(err: unknown): boolean;
  /** Whose attachments CNI GC and the leak sweep may collect: this node's only, or all. */
  collectOf(node: string): string | undefined;
  /** This node announces itself, so others may give up its empty blocks once it is gone. */
  readonly announces: boolean;
}

export function sharingOf(store: Store): Sharing {
  if (!store.shared) {
    // One writer: memory is the truth. A conflict can only mean memory fell behind the store
    // (a bug, or a database edited by hand): learn it and try once more.
    return {
      blocks: false,
      freshBindings: false,
      conflictRetries: 2,
      rereadWhenExhausted: false,
      memoryMayLag: false,
      mayHaveApplied: () => false,
      collectOf: () => undefined,
      announces: false,
    };
  }
  return {
    blocks: true,
    freshBindings: true,
    conflictRetries: 16,
    rereadWhenExhausted: true,
    memoryMayLag: true,
    // A refused transaction did not apply (a conflict, a held attachment, or a limit counted
    // before it was sent); a timeout may have (the raft commit can land after the client gave up).
    mayHaveApplied: (err) => !(err instanceof ConflictError || err instanceof LimitError || err instanceof AttachmentHeld),
    collectOf: (node) => node,
    announces: true,
  };
}
