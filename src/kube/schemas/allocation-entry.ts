/**
 * A block's allocations as an IPAMBlock stores them: one text, a line per allocation, its
 * address, a space, and its fields in ALLOCATION_FIELDS' order separated by "|", "~" for an
 * absent one (static: "1" or "~"), each value with "%", "|", "~" and every character that would
 * need a JSON escape written as in a URL (%7C). `kubectl get ipamblock -o yaml` shows it as
 *
 *   allocations: |-
 *     10.128.0.2 c0ffee…|eth0|k8s-pod-network|node-a|1796655962617|26|10.128.0.1|default-v4|~|/var/run/netns/cni-1b2c…|default|web-7d4b9|1b2c…|~
 *
 * Why text: the API server decodes, prunes, validates and re-encodes every field of an object
 * on each write, and an ADD writes its block whole. Measured on the test API server (writes
 * 6 ms apart, as pod starts come), one write of a block holding 32 / 64 allocations: 7.4 / 12.7
 * ms as fourteen fields each, 3.8 / 4.5 as a JSON array in a string each, 3.5 / 4.1 as this
 * form's entries in a map, 3.3 / 3.7 as this text (1: 2.6). Every JSON escape is a slow path
 * at each of the server's decodes and encodes (a 16 KB string of quotes cost 1.7 ms more per
 * write than one of letters), and so is every entry of a map.
 */
import { boolean, type InferOutput, integer, maxValue, minValue, number, object, optional, pipe, rawTransform, safeParse, string } from "valibot";

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
const NUMBERS = new Set<string>(["createdAt", "prefix"]);
/** What a value may not hold as it is: the separator, the absent mark, "%" itself, and what JSON (or Go's encoder) escapes. */
const SPECIAL = /[%|~"\\<>&\u0000-\u001f\u007f\u2028\u2029]/;
const SPECIALS = new RegExp(SPECIAL.source, "g");
const escapeChar = (c: string): string => (c.charCodeAt(0) < 0x80 ? `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}` : encodeURIComponent(c));

function encodeValue(value: string): string {
  return SPECIAL.test(value) ? value.replace(SPECIALS, escapeChar) : value;
}

/** Each allocation's text as read or last written: most lines of a block are written again unchanged. */
const textOf = new WeakMap<StoredAllocation, string>();

/** The stored fields of an allocation (one line's text after its address). */
function allocationEntry(a: StoredAllocation): string {
  const known = textOf.get(a);
  if (known !== undefined) return known;
  let out = "";
  for (const name of ALLOCATION_FIELDS) {
    const value = a[name];
    const text = value === undefined || value === false ? ABSENT : value === true ? "1" : typeof value === "number" ? String(value) : encodeValue(value);
    out = out ? `${out}${SEPARATOR}${text}` : text;
  }
  // What this daemon writes comes back in the write's answer and on its watch: read as is.
  recent.add(out, a);
  return out;
}

/** The fields of an entry, as the object schema then checks them (a field that is not what it should be stays a string, and fails there). */
function fieldsOf(entry: string): Record<string, unknown> | string {
  const parts = entry.split(SEPARATOR);
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

/** One allocation's fields, from the text after its address. */
const StoredAllocationSchema = pipe(
  string(),
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

/**
 * Allocations read lately, by their text: a block is sent whole on each write, to its writer
 * and to every daemon's watch, and all but one or two of its lines are the ones read the time
 * before. Entries are never changed in place, so sharing one is safe. Two generations of at
 * most 8,192 (128 full blocks in use at once) bound it to a few MB. A plain map: valibot's own
 * cache built a key string and reordered its LRU on every hit, 4% of a daemon's CPU per ADD.
 */
class RecentEntries {
  private now = new Map<string, StoredAllocation>();
  private before = new Map<string, StoredAllocation>();

  get(text: string): StoredAllocation | undefined {
    const hit = this.now.get(text);
    if (hit !== undefined) return hit;
    const older = this.before.get(text);
    if (older !== undefined) this.add(text, older);
    return older;
  }

  add(text: string, entry: StoredAllocation): void {
    this.now.set(text, entry);
    textOf.set(entry, text);
    if (this.now.size < 8192) return;
    this.before = this.now;
    this.now = new Map();
  }
}
const recent = new RecentEntries();

/** The text of a block's allocations (AllocationsSchema reads it back equal). */
export function allocationsText(allocations: Record<string, StoredAllocation>): string {
  let out = "";
  for (const ip in allocations) out += `${out ? "\n" : ""}${ip} ${allocationEntry(allocations[ip]!)}`;
  return out;
}

const ADDRESS_CHARS = /^[0-9A-Fa-f.:]+$/;

/** A block's allocations by address, from their text; a line that cannot be read is an issue naming it. */
export const AllocationsSchema = pipe(
  string(),
  rawTransform(({ dataset, addIssue, NEVER }) => {
    const out: Record<string, StoredAllocation> = {};
    if (dataset.value === "") return out;
    for (const [i, line] of dataset.value.split("\n").entries()) {
      const space = line.indexOf(" ");
      // Only what an address is made of: no other key (such as __proto__) can reach the record.
      const ip = space > 0 && ADDRESS_CHARS.test(line.slice(0, space)) ? line.slice(0, space) : "";
      const text = line.slice(space + 1);
      const known = ip ? recent.get(text) : undefined;
      const read = known || !ip ? undefined : safeParse(StoredAllocationSchema, text);
      const wrong = !ip ? "not an address, a space and the fields" : ip in out ? `${ip} is listed twice` : read && !read.success ? read.issues.map((e) => `${e.path?.map((p) => p.key).join(".") || ""}${e.path ? ": " : ""}${e.message}`).join("; ") : null;
      if (wrong !== null) {
        addIssue({ message: `line ${i + 1}${ip ? ` (${ip})` : ""}: ${wrong}` });
        return NEVER;
      }
      if (known) out[ip] = known;
      else recent.add(text, (out[ip] = read!.output as StoredAllocation));
    }
    return out;
  }),
);
