/**
 * A block's allocations as an IPAMBlock stores them: one text, a line per allocation, its
 * address, a space, and its fields in ALLOCATION_FIELDS' order separated by "|", "~" for an
 * absent one (static: "1" or "~"), each value with "%", "|", "~", "^" and every character that
 * would need a JSON escape written as in a URL (%7C). When lines share values (a block is one
 * node's, mostly one network's and one range set's), a first line starting "* " holds them once
 * and a line's field "^" takes the value from it. `kubectl get ipamblock -o yaml` shows
 *
 *   allocations: |-
 *     * ~|eth0|k8s-pod-network|node-a|~|26|10.128.0.1|default-v4|10.128.0.0/16[10.128.0.1-…]|~|~|~|~|~
 *     10.128.0.2 c0ffee…|^|^|^|1796655962617|^|^|^|^|/var/run/netns/cni-1b2c…|default|web-7d4b9|1b2c…|~
 *     10.128.0.3 d00d1e…|^|^|^|1796655963020|^|^|^|^|/var/run/netns/cni-77af…|default|web-7d4b9|77af…|~
 *
 * Why text: the API server decodes, prunes, validates and re-encodes every field of an object
 * on each write, and an ADD writes its block whole. Measured on the test API server (writes
 * 6 ms apart, as pod starts come), one write of a block holding 32 / 64 allocations: 7.4 / 12.7
 * ms as fourteen fields each, 3.8 / 4.5 as a JSON array in a string each, 3.5 / 4.1 as this
 * form's entries in a map, 3.3 / 3.7 as this text (1: 2.6). Every JSON escape is a slow path
 * at each of the server's decodes and encodes (a 16 KB string of quotes cost 1.7 ms more per
 * write than one of letters), and so is every entry of a map. Why the shared line: what is
 * left is bytes, sent to every daemon's watch too; lines of 158 bytes cut to 84 saved 0.23 /
 * 0.39 ms per write of 32 / 64 lines.
 * Blocks written before the shared line (no "* " line, "^" not escaped) read as they were.
 */
import { array, boolean, type InferOutput, integer, maxValue, minValue, number, object, optional, pipe, rawTransform, safeParse, string } from "valibot";

const time = pipe(number(), integer());

/** An allocation record without space, ip and family (the block and the key say them); absent fields are left out. */
export const AllocationFieldsSchema = object({
  network: string(),
  containerID: string(),
  ifname: string(),
  netns: optional(string()),
  podNamespace: optional(string()),
  podName: optional(string()),
  podUid: optional(string()),
  node: string(),
  createdAt: time,
  static: optional(boolean()),
  prefix: pipe(number(), integer(), minValue(0), maxValue(128)),
  gateway: optional(string()),
  pool: optional(string()),
  rangeSet: optional(string()),
});
export type StoredAllocation = InferOutput<typeof AllocationFieldsSchema>;

export const ALLOCATION_FIELDS = [
  "containerID", "ifname", "network", "node", "createdAt", "prefix", "gateway", "pool", "rangeSet", "netns", "podNamespace", "podName", "podUid", "static",
] as const satisfies readonly (keyof StoredAllocation)[];

const SEPARATOR = "|";
const ABSENT = "~";
/** A line's field that takes the shared line's value. */
const SHARED = "^";
/** How the line of shared values starts (no address does). */
const SHARED_LINE = "* ";
/** Where the fields most lines of a block have in common are, in a line: worth writing once. */
const SHAREABLE = (["ifname", "network", "node", "prefix", "gateway", "pool", "rangeSet"] as const).map((name) => ALLOCATION_FIELDS.indexOf(name));
const NUMBERS = new Set<string>(["createdAt", "prefix"]);
/** What a value may not hold as it is: the separator, the absent and shared marks, "%" itself, and what JSON (or Go's encoder) escapes. */
const SPECIAL = /[%|~^"\\<>&\u0000-\u001f\u007f\u2028\u2029]/;
const SPECIALS = new RegExp(SPECIAL.source, "g");
const escapeChar = (c: string): string => (c.charCodeAt(0) < 0x80 ? `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}` : encodeURIComponent(c));

function encodeValue(value: string): string {
  return SPECIAL.test(value) ? value.replace(SPECIALS, escapeChar) : value;
}

/** Each allocation's line (after its address) as read or last written, and the shared line it was under. */
const lineWritten = new WeakMap<StoredAllocation, { shared: string; text: string }>();

type FieldValue = StoredAllocation[(typeof ALLOCATION_FIELDS)[number]];

/** A field as written: absent (or false) the mark, true "1", a number in decimal, a string escaped. */
function fieldText(value: FieldValue): string {
  return value === undefined || value === false ? ABSENT : value === true ? "1" : typeof value === "number" ? String(value) : encodeValue(value);
}

/**
 * The shared line's fields for these allocations (absent: none worth it): for each shareable
 * field, the value most of them have (a majority vote, then counted), when at least two lines
 * have it and its text is longer than the mark. Voted on the values, not their texts (the same
 * thing: a value has one text): a block's vote runs on every write of it, and keeping each
 * allocation's texts for it cost more memory than making them when a line is new.
 */
function sharedFields(entries: StoredAllocation[]): string[] | undefined {
  if (entries.length < 2) return undefined;
  let shared: string[] | undefined;
  for (const i of SHAREABLE) {
    const name = ALLOCATION_FIELDS[i]!;
    let candidate: FieldValue;
    let votes = 0;
    for (const a of entries) {
      if (votes === 0) candidate = a[name];
      votes += a[name] === candidate ? 1 : -1;
    }
    const text = fieldText(candidate);
    if (text.length < 2) continue;
    let count = 0;
    for (const a of entries) if (a[name] === candidate) count++;
    if (count < 2) continue;
    shared ??= ALLOCATION_FIELDS.map(() => ABSENT);
    shared[i] = text;
  }
  return shared;
}

/** The stored fields of an allocation (one line's text after its address) under a shared line. */
function allocationEntry(a: StoredAllocation, sharedLine: string, shared: readonly string[] | undefined): string {
  const known = lineWritten.get(a);
  if (known !== undefined && known.shared === sharedLine) return known.text;
  let out = "";
  for (let i = 0; i < ALLOCATION_FIELDS.length; i++) {
    const own = fieldText(a[ALLOCATION_FIELDS[i]!]);
    const text = shared !== undefined && shared[i] !== ABSENT && own === shared[i] ? SHARED : own;
    out = i === 0 ? text : `${out}${SEPARATOR}${text}`;
  }
  // What this daemon writes comes back in the write's answer and on its watch: read as is.
  recent.add(out, sharedLine, a);
  return out;
}

/** The fields of an entry, as the object schema then checks them (a field that is not what it should be stays a string, and fails there). */
function fieldsOf(parts: string[]): Record<string, unknown> | string {
  if (parts.length !== ALLOCATION_FIELDS.length) return `an allocation has ${ALLOCATION_FIELDS.length} fields separated by "${SEPARATOR}"; this one has ${parts.length}`;
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < parts.length; i++) {
    const name = ALLOCATION_FIELDS[i]!;
    const text = parts[i]!;
    if (text === ABSENT) continue;
    if (NUMBERS.has(name)) fields[name] = /^\d{1,16}$/.test(text) ? Number(text) : text;
    else if (name === "static") fields[name] = text === "1" ? true : text;
    else if (!text.includes("%")) fields[name] = text;
    else {
      try {
        fields[name] = decodeURIComponent(text);
      } catch {
        return `${name}: a malformed % escape`;
      }
    }
  }
  return fields;
}

/** One allocation's fields, from its field texts (the shared ones already filled in). */
const StoredAllocationSchema = pipe(
  array(string()),
  rawTransform(({ dataset, addIssue, NEVER }) => {
    const fields = fieldsOf(dataset.value);
    if (typeof fields === "string") {
      addIssue({ message: fields });
      return NEVER;
    }
    return fields;
  }),
  AllocationFieldsSchema,
);

interface Recent {
  entry: StoredAllocation;
  shared: string;
}

/**
 * Allocations read lately, by their text and the shared line it was under: a block is sent
 * whole on each write, to its writer and to every daemon's watch, and all but one or two of its
 * lines are the ones read the time before. Entries are never changed in place, so sharing one is
 * safe. Two generations of at most 8,192 (128 full blocks in use at once) bound it to a few MB.
 * A plain map: valibot's own cache built a key string and reordered its LRU on every hit, 4% of
 * a daemon's CPU per ADD.
 */
class RecentEntries {
  private now = new Map<string, Recent>();
  private before = new Map<string, Recent>();

  get(text: string, shared: string): StoredAllocation | undefined {
    const hit = this.now.get(text);
    if (hit !== undefined) return hit.shared === shared ? hit.entry : undefined;
    const older = this.before.get(text);
    if (older === undefined || older.shared !== shared) return undefined;
    this.now.set(text, older);
    this.rotate();
    return older.entry;
  }

  add(text: string, shared: string, entry: StoredAllocation): void {
    this.now.set(text, { entry, shared });
    lineWritten.set(entry, { shared, text });
    this.rotate();
  }

  private rotate(): void {
    if (this.now.size < 8192) return;
    this.before = this.now;
    this.now = new Map();
  }
}
const recent = new RecentEntries();

/** The text of a block's allocations (AllocationsSchema reads it back equal). */
export function allocationsText(allocations: Record<string, StoredAllocation>): string {
  const shared = sharedFields(Object.values(allocations));
  const sharedLine = shared ? shared.join(SEPARATOR) : "";
  let out = shared ? `${SHARED_LINE}${sharedLine}` : "";
  for (const ip in allocations) out += `${out ? "\n" : ""}${ip} ${allocationEntry(allocations[ip]!, sharedLine, shared)}`;
  return out;
}

const ADDRESS_CHARS = /^[0-9A-Fa-f.:]+$/;

/** A block's allocations by address, from their text; a line that cannot be read is an issue naming it. */
export const AllocationsSchema = pipe(
  string(),
  rawTransform(({ dataset, addIssue, NEVER }) => {
    const out: Record<string, StoredAllocation> = {};
    if (dataset.value === "") return out;
    const lines = dataset.value.split("\n");
    let sharedLine = "";
    let shared: string[] | undefined;
    if (lines[0]!.startsWith(SHARED_LINE)) {
      sharedLine = lines[0]!.slice(SHARED_LINE.length);
      shared = sharedLine.split(SEPARATOR);
      if (shared.length !== ALLOCATION_FIELDS.length) {
        addIssue({ message: `line 1: the shared values are ${ALLOCATION_FIELDS.length} fields separated by "${SEPARATOR}"; these are ${shared.length}` });
        return NEVER;
      }
    }
    for (let i = shared ? 1 : 0; i < lines.length; i++) {
      const line = lines[i]!;
      const space = line.indexOf(" ");
      // Only what an address is made of: no other key (such as __proto__) can reach the record.
      const ip = space > 0 && ADDRESS_CHARS.test(line.slice(0, space)) ? line.slice(0, space) : "";
      const text = line.slice(space + 1);
      const known = ip ? recent.get(text, sharedLine) : undefined;
      // Without a shared line "^" is a value as it is (blocks written before it did not escape it).
      const texts = known || !ip ? undefined : shared ? text.split(SEPARATOR).map((t, f) => (t === SHARED ? (shared[f] ?? t) : t)) : text.split(SEPARATOR);
      const read = texts ? safeParse(StoredAllocationSchema, texts) : undefined;
      const wrong = !ip ? "not an address, a space and the fields" : ip in out ? `${ip} is listed twice` : read && !read.success ? read.issues.map((e) => `${e.path?.map((p) => p.key).join(".") || ""}${e.path ? ": " : ""}${e.message}`).join("; ") : null;
      if (wrong !== null) {
        addIssue({ message: `line ${i + 1}${ip ? ` (${ip})` : ""}: ${wrong}` });
        return NEVER;
      }
      if (known) out[ip] = known;
      // Its line as read is reused while the shared line stays (same text, same meaning); its
      // fields are encoded afresh if it is written under another (blocks written before "^" was
      // escaped may hold it bare).
      else recent.add(text, sharedLine, (out[ip] = read!.output as StoredAllocation));
    }
    return out;
  }),
);
