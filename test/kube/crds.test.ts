/**
 * The pool CRDs (k8s/crds/) and the Cluster API claim/address CRDs (test fixtures) on a real
 * kube-apiserver: they become Established; the CRDs and src/kube/schemas name the same fields;
 * pools in the provider's shape and with every ipamd field are stored and read back typed;
 * the server itself refuses pools that break the schema; status is a subresource; the
 * Kubernetes-API store's kinds match src/kube/schemas/store.ts and round-trip; claims and
 * addresses are written and read in v1beta2 and v1beta1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { safeParse } from "valibot";
import { resolve } from "node:path";
import { cleanup } from "../e2e/harness.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { BadRequestError, InvalidError, KubeApiError } from "../../src/kube/errors.ts";
import {
  GlobalInClusterIPPools, InClusterIPPools, IPAMBlocks, IPAddressClaimsV1beta1, IPAddressClaimsV1beta2, IPAddressesV1beta1, IPAddressesV1beta2,
} from "../../src/kube/resources.ts";
import { PoolSpecSchema, PoolStatusSchema } from "../../src/kube/schemas/pools.ts";
import {
  ALLOCATION_FIELDS, AllocationFieldsSchema, AllocationsSchema, allocationsText, BlockSpecSchema, blockSpecWire, CommitMarkerSchema, IPAMBlockSchema, NodeSubnetSpecSchema, PendingChangeSchema, StoredBindingSchema,
  StoredHoldSchema, type StoredAllocation, UsageRefSchema, UsageSpecSchema,
} from "../../src/kube/schemas/store.ts";
import { CAPI_CRDS, FIELD_MANAGER, installCrds, POOL_CRDS, ROOT, STORE_CRDS, startWithAdmin } from "./helpers.ts";

afterAll(cleanup);

const NS = "pools";
let client: KubeClient;

beforeAll(async () => ({ client } = await startWithAdmin({}, [NS])), 120_000);

// biome-ignore lint: a CRD's openAPI schema is free-form
type Schema = any;
const crdVersion = (file: string) => (Bun.YAML.parse(readFileSync(resolve(ROOT, file), "utf8")) as Schema).spec.versions[0];

describe("CRDs", () => {
  test("the pool CRDs and Cluster API's IPAddressClaim and IPAddress CRDs apply and become Established", async () => {
    const installed = await installCrds(client, [...POOL_CRDS, ...CAPI_CRDS]);
    expect(installed.map((c) => c.metadata.name).sort()).toEqual([
      "globalinclusterippools.ipam.cluster.x-k8s.io", "inclusterippools.ipam.cluster.x-k8s.io",
      "ipaddressclaims.ipam.cluster.x-k8s.io", "ipaddresses.ipam.cluster.x-k8s.io",
    ]);
  }, 60_000);

  test("the CRDs and the valibot schema name the same spec and status fields; the two pool kinds differ only in scope", () => {
    const [namespaced, global] = POOL_CRDS.map(crdVersion) as [Schema, Schema];
    const spec = namespaced.schema.openAPIV3Schema.properties.spec;
    expect(Object.keys(spec.properties).sort()).toEqual(Object.keys(PoolSpecSchema.entries).sort());
    expect(spec.required).toEqual(["addresses", "prefix"]);
    const counts = namespaced.schema.openAPIV3Schema.properties.status.properties.ipAddresses;
    expect(Object.keys(counts.properties).sort()).toEqual(["free", "outOfRange", "total", "used"]);
    expect(Object.keys(PoolStatusSchema.entries)).toEqual(["ipAddresses"]);
    const { description: _a, ...namespacedSchema } = namespaced.schema.openAPIV3Schema;
    const { description: _b, ...globalSchema } = global.schema.openAPIV3Schema;
    expect(globalSchema).toEqual(namespacedSchema);
    expect({ ...global, schema: null }).toEqual({ ...namespaced, schema: null });
  });

  test("a pool in the provider's shape and one with every ipamd field are stored and read back typed", async () => {
    await client.create(InClusterIPPools, {
      metadata: { name: "capi-style", namespace: NS },
      spec: { addresses: ["10.10.0.10-10.10.0.50", "10.10.0.64/28"], prefix: 24, gateway: "10.10.0.1", excludedAddresses: ["10.10.0.20"], allocateReservedIPAddresses: false },
    });
    const everything = {
      addresses: ["fd10::/64"], prefix: 64, gateway: "fd10::1",
      namespaces: ["team-a", "team-b"], namespaceSelector: { matchLabels: { tier: "web" }, matchExpressions: [{ key: "env", operator: "In" as const, values: ["prod"] }] },
      nodes: ["worker-*", "edge-0?"], space: "tenants", maxPerNamespace: 20, releaseCooldown: 300, sticky: "pod" as const, stickyTTL: 3600,
      addressReuseGracePeriodSeconds: 30,
    };
    await client.apply(GlobalInClusterIPPools, { metadata: { name: "everything" }, spec: everything }, { fieldManager: FIELD_MANAGER, fieldValidation: "Strict" });
    const namespaced = await client.get(InClusterIPPools, "capi-style", { namespace: NS });
    expect(namespaced.spec.excludedAddresses).toEqual(["10.10.0.20"]);
    const global = await client.get(GlobalInClusterIPPools, "everything");
    expect(global.spec).toEqual(everything);
    expect(global.metadata.namespace).toBeUndefined();
    const list = await client.list(InClusterIPPools);
    expect({ names: list.items.map((p) => p.metadata.name), invalid: list.invalid }).toEqual({ names: ["capi-style"], invalid: [] });
  });

  test("the server refuses pools that break the schema, naming the field", async () => {
    const refusal = async (spec: Record<string, unknown>, kind: typeof KubeApiError = InvalidError) => {
      const error = await client.create(InClusterIPPools, { metadata: { name: "bad", namespace: NS }, spec } as never, { dryRun: true, fieldValidation: "Strict" }).then(() => null, (e) => e);
      expect(error).toBeInstanceOf(kind);
      return (error as KubeApiError).message;
    };
    const base = { addresses: ["10.0.0.0/24"], prefix: 24 };
    expect(await refusal({ addresses: ["10.0.0.0/24"] })).toContain("spec.prefix: Required value");
    expect(await refusal({ ...base, prefix: 129 })).toContain("spec.prefix: Invalid value: 129");
    expect(await refusal({ ...base, maxPerNamespace: 0 })).toContain("spec.maxPerNamespace: Invalid value: 0");
    expect(await refusal({ ...base, sticky: "node" })).toContain('spec.sticky: Unsupported value: "node"');
    expect(await refusal({ ...base, stickyTTL: 60 })).toContain("stickyTTL needs sticky");
    expect(await refusal({ ...base, namespaces: ["Team_A"] })).toContain("spec.namespaces[0]");
    expect(await refusal({ ...base, nodes: ["worker/1"] })).toContain("spec.nodes[0]");
    expect(await refusal({ ...base, releaseCooldown: 31 * 24 * 3600 + 1 })).toContain("spec.releaseCooldown");
    expect(await refusal({ ...base, space: "" })).toContain("spec.space");
    // An unknown field: the server's default (Warn) would drop it; Strict refuses it.
    expect(await refusal({ ...base, bogus: true }, BadRequestError)).toContain('unknown field "spec.bogus"');
  });

  test("status is a subresource: update leaves it alone, updateStatus writes only it, both optimistic", async () => {
    const pool = await client.create(InClusterIPPools, { metadata: { name: "counted", namespace: NS }, spec: { addresses: ["10.20.0.0/24"], prefix: 24 } });
    const ipAddresses = { total: 254, free: 250, used: 4, outOfRange: 0 };
    const updated = await client.update(InClusterIPPools, { ...pool, status: { ipAddresses } });
    expect(updated.status ?? null).toBeNull();
    const withStatus = await client.updateStatus(InClusterIPPools, { ...updated, spec: { ...updated.spec, prefix: 16 }, status: { ipAddresses } });
    expect(withStatus.status?.ipAddresses).toEqual(ipAddresses);
    expect(withStatus.spec.prefix).toBe(24);
    expect(await client.updateStatus(InClusterIPPools, { ...updated, status: { ipAddresses } }).then(() => null, (e) => e.name)).toBe("ConflictError");
    const applied = await client.apply(InClusterIPPools, { metadata: { name: "counted", namespace: NS }, status: { ipAddresses: { ...ipAddresses, free: 249, used: 5 } } } as never, {
      fieldManager: "ipamd-controller", subresource: "status", force: true,
    });
    expect(applied.status?.ipAddresses).toMatchObject({ free: 249, used: 5 });
  });
});

describe("Cluster API claims and addresses", () => {
  const poolRef = { apiGroup: "ipam.cluster.x-k8s.io", kind: "InClusterIPPool", name: "capi-style" };

  test("a v1beta2 claim, its address and its status are written and read typed, in v1beta2 and in v1beta1", async () => {
    const claim = await client.create(IPAddressClaimsV1beta2, { metadata: { name: "machine-0", namespace: NS }, spec: { poolRef, clusterName: "c1" } });
    await client.create(IPAddressesV1beta2, {
      metadata: { name: "machine-0", namespace: NS, ownerReferences: [{ apiVersion: "ipam.cluster.x-k8s.io/v1beta2", kind: "IPAddressClaim", name: "machine-0", uid: claim.metadata.uid! }] },
      spec: { claimRef: { name: "machine-0" }, poolRef, address: "10.10.0.10", prefix: 24, gateway: "10.10.0.1" },
    });
    const condition = { type: "Ready", status: "True" as const, reason: "Allocated", message: "", lastTransitionTime: "2026-05-04T12:00:00Z" };
    const bound = await client.updateStatus(IPAddressClaimsV1beta2, { ...claim, status: { addressRef: { name: "machine-0" }, conditions: [condition] } });
    expect(bound.status).toMatchObject({ addressRef: { name: "machine-0" }, conditions: [condition] });

    const address = await client.get(IPAddressesV1beta2, "machine-0", { namespace: NS });
    expect(address.spec).toEqual({ claimRef: { name: "machine-0" }, poolRef, address: "10.10.0.10", prefix: 24, gateway: "10.10.0.1" });
    const old = await client.get(IPAddressesV1beta1, "machine-0", { namespace: NS });
    expect({ apiVersion: old.apiVersion, address: old.spec.address, pool: old.spec.poolRef.name }).toEqual({ apiVersion: "ipam.cluster.x-k8s.io/v1beta1", address: "10.10.0.10", pool: "capi-style" });
    const oldClaims = await client.list(IPAddressClaimsV1beta1, { namespace: NS });
    expect(oldClaims.items.map((c) => c.spec.poolRef.kind)).toEqual(["InClusterIPPool"]);
  });

  test("v1beta2 requires poolRef.apiGroup and a prefix of at most 128, as Cluster API does; v1beta1 leaves apiGroup optional", async () => {
    const { apiGroup: _, ...noGroup } = poolRef;
    const v2 = await client.create(IPAddressClaimsV1beta2, { metadata: { name: "no-group", namespace: NS }, spec: { poolRef: noGroup } } as never, { dryRun: true }).then(() => null, (e) => e);
    expect(v2).toBeInstanceOf(InvalidError);
    expect(v2.message).toContain("spec.poolRef.apiGroup: Required value");
    const v1 = await client.create(IPAddressClaimsV1beta1, { metadata: { name: "no-group", namespace: NS }, spec: { poolRef: noGroup } }, { dryRun: true });
    expect(v1.spec.poolRef).toEqual(noGroup);
    const wide = await client.create(IPAddressesV1beta2, { metadata: { name: "wide", namespace: NS }, spec: { claimRef: { name: "x" }, poolRef, address: "fd00::1", prefix: 129 } }, { dryRun: true }).then(() => null, (e) => e);
    expect(wide).toBeInstanceOf(InvalidError);
    expect(wide.message).toContain("spec.prefix");
  });
});

describe("the Kubernetes-API store's kinds", () => {
  /** The properties a CRD's openAPI schema names at `path` (dotted, through additionalProperties with "*"). */
  const properties = (file: string, path: string): string[] => {
    let node = crdVersion(file).schema.openAPIV3Schema.properties.spec;
    for (const step of path ? path.split(".") : []) node = step === "*" ? node.additionalProperties : node.properties[step];
    return Object.keys(node.properties).sort();
  };
  const keys = (schema: { entries: object }) => Object.keys(schema.entries).sort();

  test("the CRDs and src/kube/schemas/store.ts name the same fields, at every level", () => {
    expect(properties(STORE_CRDS[0]!, "")).toEqual(keys(BlockSpecSchema));
    expect(properties(STORE_CRDS[0]!, "holds.*")).toEqual(keys(StoredHoldSchema));
    expect(properties(STORE_CRDS[0]!, "bindings.*")).toEqual(keys(StoredBindingSchema));
    expect(properties(STORE_CRDS[0]!, "pending.*")).toEqual(keys(PendingChangeSchema));
    expect(properties(STORE_CRDS[0]!, "commits.*")).toEqual(keys(CommitMarkerSchema));
    expect(properties(STORE_CRDS[1]!, "")).toEqual(keys(UsageSpecSchema));
    expect(properties(STORE_CRDS[1]!, "addresses.*")).toEqual(keys(UsageRefSchema));
    expect(properties(STORE_CRDS[2]!, "")).toEqual(keys(NodeSubnetSpecSchema));
  });

  test("allocations are one text in the CRD, whose description lists every field in the order ipamd writes them", () => {
    const spec = crdVersion(STORE_CRDS[0]!).schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.allocations.type).toBe("string");
    expect(spec.properties.pending.additionalProperties.properties.allocations.type).toBe("string");
    expect([...ALLOCATION_FIELDS].sort() as string[]).toEqual(keys(AllocationFieldsSchema));
    const described = spec.properties.allocations.description.replace(/\s+/g, " ");
    const at = ALLOCATION_FIELDS.map((field) => described.search(new RegExp(`\\b${field}\\b`)));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect(at).toEqual([...at].sort((a, b) => a - b));
  });

  test("a line this daemon wrote comes back (in the write's answer, on the watch) as the allocation it wrote, unparsed", () => {
    const mine = { network: "n", containerID: "written-here", ifname: "eth0", node: "node-a", createdAt: 5, prefix: 24, netns: "/run/netns/x|y" };
    const text = allocationsText({ "10.0.0.9": mine });
    const read = safeParse(IPAMBlockSchema, { metadata: { name: "b" }, spec: { space: "s", cidr: "10.0.0.0/26", node: "n", allocations: text } });
    expect((read.output as { spec: { allocations: Record<string, unknown> } }).spec.allocations["10.0.0.9"]).toBe(mine);
    // Read by another daemon (its own copy of the text), it parses to the same fields.
    expect(safeParse(AllocationsSchema, `${text}`.replace("written-here", "written-there")).output).toEqual({ "10.0.0.9": { ...mine, containerID: "written-there" } });
  });

  test("values most lines share are written once, in a first '* ' line, and read back into every line that says '^'", () => {
    const line = (i: number, more: object = {}) => ({
      network: "k8s-pod-network", containerID: `c${i}`, ifname: "eth0", node: "node-a", createdAt: 1_700_000_000_000 + i, prefix: 26, gateway: "10.0.0.1",
      pool: "default-v4", rangeSet: "10.0.0.0/26[10.0.0.1-10.0.0.62 gw 10.0.0.1]", netns: `/var/run/netns/cni-${i}`, ...more,
    });
    // One line borrowed by another node, one of another network: the majority is shared, they keep theirs.
    const allocations = { "10.0.0.2": line(2), "10.0.0.3": line(3), "10.0.0.4": line(4, { node: "node-b" }), "10.0.0.5": line(5, { network: "other", ifname: "net1" }) };
    const text = allocationsText(allocations);
    const lines = text.split("\n");
    expect(lines[0]).toBe("* ~|eth0|k8s-pod-network|node-a|~|26|10.0.0.1|default-v4|10.0.0.0/26[10.0.0.1-10.0.0.62 gw 10.0.0.1]|~|~|~|~|~");
    expect(lines[1]).toBe("10.0.0.2 c2|^|^|^|1700000000002|^|^|^|^|/var/run/netns/cni-2|~|~|~|~");
    expect(lines[3]).toBe("10.0.0.4 c4|^|^|node-b|1700000000004|^|^|^|^|/var/run/netns/cni-4|~|~|~|~");
    expect(lines[4]).toStartWith("10.0.0.5 c5|net1|other|^|");
    const unshared = Object.entries(allocations).map(([ip, a]) => allocationsText({ [ip]: a }).length + 1).reduce((x, y) => x + y);
    expect(text.length).toBeLessThan(unshared * 0.75);
    // Another daemon's copy of the text (not the allocations this one wrote) reads the same fields.
    const copy = text.replaceAll("|/var/run/netns/", "|/run/netns/");
    const read = safeParse(AllocationsSchema, copy);
    expect(read.output).toEqual(Object.fromEntries(Object.entries(allocations).map(([ip, a]) => [ip, { ...a, netns: a.netns.replace("/var/run/", "/run/") }])));
    // The same line under another shared line means other values: read afresh, not from what was read before.
    expect((safeParse(AllocationsSchema, copy.replace("|k8s-pod-network|", "|net-2|")).output as Record<string, { network: string }>)["10.0.0.2"]!.network).toBe("net-2");
    // One allocation alone, or nothing worth sharing: no shared line.
    expect(allocationsText({ "10.0.0.2": line(2) })).not.toContain("^");
    expect(allocationsText({ "10.0.0.2": line(2, { ifname: "a" }), "10.0.0.3": line(3, { ifname: "b", network: "x", node: "y", prefix: 24, gateway: "g", pool: "p", rangeSet: "r" }) })).not.toContain("*");
  });

  test("any values, shared or not, read back as written (random blocks, values with every mark the text uses)", () => {
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pick = <T,>(values: readonly T[]): T => values[random(values.length)]!;
    const texts = ["^", "~", "*", "* x", "%", "%5E", "|", "a^b", "x\ny", "é", "\u2028", "", "k8s-pod-network", "node-a", "eth0", "<&>", '"q"', "10.0.0.1"] as const;
    for (let round = 0; round < 300; round++) {
      const allocations: Record<string, StoredAllocation> = {};
      for (let i = 0, n = 1 + random(12); i < n; i++) {
        const optional = (): string | undefined => (random(3) === 0 ? undefined : pick(texts));
        const a: StoredAllocation = { containerID: `cid-${round}-${i}${pick(texts)}`, network: pick(texts), ifname: pick(texts), node: pick(texts), createdAt: random(2 ** 30), prefix: pick([24, 26, 64, 128]) };
        for (const [name, value] of [["netns", optional()], ["podNamespace", optional()], ["podName", optional()], ["podUid", optional()], ["gateway", optional()], ["pool", optional()], ["rangeSet", optional()]] as const) if (value !== undefined) a[name] = value;
        if (random(2)) a.static = true;
        allocations[`10.${round >> 8}.${round & 255}.${i}`] = a;
      }
      // Read as another daemon would (not the allocations this one wrote): its container IDs differ.
      const read = safeParse(AllocationsSchema, allocationsText(allocations).replaceAll("cid-", "cix-"));
      expect(read.issues).toBeUndefined();
      expect(read.output).toEqual(Object.fromEntries(Object.entries(allocations).map(([ip, a]) => [ip, { ...a, containerID: a.containerID.replace("cid-", "cix-") }])));
    }
  });

  test("a value '^' is written escaped; in a block written before shared lines (none, '^' bare) it is read as it is", () => {
    const caret = { network: "^", containerID: "c", ifname: "eth0", node: "node-a", createdAt: 1, prefix: 24 };
    const text = allocationsText({ "10.0.0.1": caret, "10.0.0.2": { ...caret, containerID: "d" } });
    expect(text).toContain("|%5E|");
    expect(safeParse(AllocationsSchema, text.replaceAll("|1|", "|2|")).output).toEqual({ "10.0.0.1": { ...caret, createdAt: 2 }, "10.0.0.2": { ...caret, containerID: "d", createdAt: 2 } });
    const before = safeParse(AllocationsSchema, "10.0.0.1 c|eth0|^|node-a|3|24|~|~|~|~|~|~|~|~\n10.0.0.2 d|eth0|^|node-a|3|24|~|~|~|~|~|~|~|~");
    expect(before.output).toEqual({ "10.0.0.1": { ...caret, createdAt: 3 }, "10.0.0.2": { ...caret, containerID: "d", createdAt: 3 } });
    // Written again, it keeps its meaning.
    const again = allocationsText(before.output as Record<string, StoredAllocation>);
    expect(again).not.toContain("|^|node-a|");
    expect(safeParse(AllocationsSchema, again.replaceAll("|3|", "|4|")).output).toEqual({ "10.0.0.1": { ...caret, createdAt: 4 }, "10.0.0.2": { ...caret, containerID: "d", createdAt: 4 } });
  });

  test("allocations that are not lines of an address and its fields are refused when read, naming the line and what is wrong", () => {
    const block = (allocations: string) => safeParse(IPAMBlockSchema, { metadata: { name: "b" }, spec: { space: "s", cidr: "10.0.0.0/26", node: "n", allocations } });
    const good = "10.0.0.1 c|eth0|net|node-a|1|24|~|~|~|~|~|~|~|~";
    const two = block(`${good}\n${good.replace("10.0.0.1 c", "10.0.0.2 d")}`);
    expect(two.success).toBe(true);
    expect((two.output as { spec: { allocations: object } }).spec.allocations).toEqual({
      "10.0.0.1": { containerID: "c", ifname: "eth0", network: "net", node: "node-a", createdAt: 1, prefix: 24 },
      "10.0.0.2": { containerID: "d", ifname: "eth0", network: "net", node: "node-a", createdAt: 1, prefix: 24 },
    });
    for (const [text, says] of [
      ["not-an-entry", "line 1: not an address, a space and the fields"],
      [good.replace("10.0.0.1", "__proto__"), "line 1: not an address, a space and the fields"],
      ["10.0.0.1 c|eth0", "line 1 (10.0.0.1): an allocation has 14 fields"],
      [`${good}\n${good}`, "line 2 (10.0.0.1): 10.0.0.1 is listed twice"],
      [`${good}\n${good.replace("10.0.0.1", "10.0.0.2").replace("|24|", "|129|")}`, "line 2 (10.0.0.2): prefix"],
      [good.replace("|eth0|", "|~|"), "ifname"],
      [good.replace("|1|", "|x|"), "createdAt"],
      [good.replace("|net|", "|n%zz|"), "network: a malformed % escape"],
      [good.replace(/~$/, "yes"), "static"],
      [`* ~|eth0\n${good}`, "line 1: the shared values are 14 fields"],
      [`* ~|~|net|~|~|~|~|~|~|~|~|~|~|~\n${good.replace("|net|", "|^|").replace("|24|", "|^|")}`, "line 2 (10.0.0.1): prefix"],
    ] as const) {
      const read = block(text);
      expect(read.success).toBe(false);
      expect(JSON.stringify(read.issues)).toContain(says);
    }
  });

  test("they apply and become Established; a block is stored and read back typed; the server refuses one that breaks the schema", async () => {
    const installed = await installCrds(client, STORE_CRDS);
    expect(installed.map((c) => c.metadata.name).sort()).toEqual(["ipamblocks.ipamd.io", "ipamnamespaceusages.ipamd.io", "ipamnodesubnets.ipamd.io"]);
    const spec = {
      space: "@ipv4", cidr: "10.30.0.0/26", node: "node-a",
      allocations: {
        "10.30.0.2": { network: "n", containerID: "c", ifname: "eth0", node: "node-a", createdAt: 1_700_000_000_000, prefix: 24, pool: "v4" },
        "10.30.0.5": {
          network: "n", containerID: "d", ifname: "net1", netns: '/run/netns/a "quoted" | ~ 100% <&> \\ ünï\u2028 one', podNamespace: "ns", podName: "p", podUid: "u", node: "node-a",
          createdAt: 1_700_000_000_001, static: true, prefix: 26, gateway: "10.30.0.1", rangeSet: "10.30.0.0/24[10.30.0.1-10.30.0.254 gw 10.30.0.1]",
        },
      },
      holds: { "10.30.0.3": { kind: "cooling" as const, until: 1_700_000_060_000 } },
      pending: {
        "x-1": { primary: "b-other", node: "node-a", at: 1, removeAllocations: ["10.30.0.4"] },
        "x-2": { primary: "b-other", node: "node-a", at: 2, allocations: { "10.30.0.6": { network: "n", containerID: "e", ifname: "eth0", node: "node-a", createdAt: 3, prefix: 24 } } },
      },
    };
    // A line needs no JSON escape, whatever its values hold (each escape is a slow path on the server).
    for (const line of (blockSpecWire(spec).allocations ?? "").split("\n")) expect(JSON.stringify(line)).toBe(`"${line}"`);
    await client.create(IPAMBlocks, { metadata: { name: "b-test", namespace: NS }, spec: blockSpecWire(spec) }, { fieldValidation: "Strict" });
    expect((await client.get(IPAMBlocks, "b-test", { namespace: NS })).spec).toEqual(spec);
    const bad = await client.create(IPAMBlocks, { metadata: { name: "b-bad", namespace: NS }, spec: { ...blockSpecWire(spec), holds: { "10.30.0.3": { kind: "lent" } } } } as never, { dryRun: true }).then(() => null, (e) => e);
    expect(bad).toBeInstanceOf(InvalidError);
    expect(bad.message).toContain("spec.holds.10.30.0.3.kind: Unsupported value");
  });
});
