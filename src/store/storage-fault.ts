/**
 * A store that cannot do its job — a full disk, a read-only file system, an I/O error, an
 * unreachable etcd — is an operator's problem, not a bug: it is named for what it is, with
 * the store's location and the cause, and the CNI code that tells a runtime whether retrying
 * may help (11: the condition can pass by itself; 5: someone has to act).
 */
import { ErrorCode, IpamError } from "../errors.ts";

export class StorageFault extends IpamError {
  constructor(
    /** Where the store lives: the database path, or etcd's endpoints. */
    readonly store: string,
    /** The cause in a few words, the same for every failure of one kind (logged once per cause). */
    readonly reason: string,
    code: number,
    /** What failed this time (an error code, an endpoint's answer): in msg, not in the reason. */
    readonly detail?: string,
  ) {
    super(code, `store ${store}: ${reason}${detail ? ` (${detail})` : ""}`);
    this.name = "StorageFault";
  }
}

/** A write the store could not confirm (no answer in time, a lost connection): it may have been applied. */
export class UnconfirmedWrite extends StorageFault {}

/** SQLite's result codes that mean the storage under the database failed, and how. */
const SQLITE_FAULTS: [prefix: string, cause: string, code: number][] = [
  ["SQLITE_FULL", "the disk is full", ErrorCode.TryAgainLater],
  ["SQLITE_BUSY", "the database is busy", ErrorCode.TryAgainLater],
  ["SQLITE_LOCKED", "the database is locked", ErrorCode.TryAgainLater],
  ["SQLITE_READONLY", "the database cannot be written (read-only)", ErrorCode.IoFailure],
  ["SQLITE_IOERR", "I/O error", ErrorCode.IoFailure],
  ["SQLITE_CORRUPT", "the database file is corrupt", ErrorCode.IoFailure],
  ["SQLITE_NOTADB", "the file is not an SQLite database", ErrorCode.IoFailure],
  ["SQLITE_CANTOPEN", "the database file cannot be opened", ErrorCode.IoFailure],
  ["SQLITE_PERM", "permission denied", ErrorCode.IoFailure],
  ["SQLITE_NOMEM", "out of memory", ErrorCode.TryAgainLater],
];

/** The system errors (errno names) of file operations that mean the storage failed. */
const FILE_FAULTS: Record<string, [cause: string, code: number]> = {
  ENOSPC: ["the disk is full", ErrorCode.TryAgainLater],
  EDQUOT: ["the disk quota is exhausted", ErrorCode.TryAgainLater],
  EROFS: ["the file system is read-only", ErrorCode.IoFailure],
  EIO: ["I/O error", ErrorCode.IoFailure],
  EACCES: ["permission denied", ErrorCode.IoFailure],
  EPERM: ["permission denied", ErrorCode.IoFailure],
};

/** The StorageFault of a failed file operation on the store's files, or null. */
export function fileFault(path: string, err: unknown): StorageFault | null {
  const code = (err as NodeJS.ErrnoException)?.code;
  const fault = code ? FILE_FAULTS[code] : undefined;
  return fault ? new StorageFault(path, fault[0], fault[1], code) : null;
}

/**
 * The StorageFault an SQLite error stands for, or null when it is not one (a constraint, a bug).
 * SQLite reports a write to a read-only file system as an I/O error or "readonly" without the
 * system's reason; `writable` (a write-access check of the directory) tells the two apart.
 */
export function sqliteFault(path: string, err: unknown, writable?: () => void): StorageFault | null {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") return null;
  const match = SQLITE_FAULTS.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`));
  if (!match) return null;
  if (writable && /^SQLITE_(IOERR|READONLY|CANTOPEN)/.test(code)) {
    try {
      writable();
    } catch (reason) {
      const fault = fileFault(path, reason);
      if (fault) return new StorageFault(path, fault.reason, fault.code, code);
    }
  }
  return new StorageFault(path, match[1], match[2], code);
}
