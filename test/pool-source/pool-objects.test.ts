/** Pool objects as named pools: names, scope, the provider's fields, and what a namespaced pool may not say. */
import { describe, expect, test } from "bun:test";
import { type PoolObject, poolOfObject, withSelected } from "../../src/pool-source/pool-objects.ts";
import { matchesSelector } from "../../src/pool-source/selector.ts";

const inCluster = (namespace: string, name: string, spec: Record<string, unknown>): PoolObject => ({ kind: "InClusterIPPool", object: { metadata: { namespace, name }, spec } as never });
const global = (name: string, spec: Record<string, unknown>): PoolObject => ({ kind: "GlobalInClusterIPPool", object: { metadata: { name }, spec } as never });

describe("pool objects", () => {
  test("names: a global pool is its name, a namespaced one NAMESPACE.NAME serving that namespace", () => {
    const g = poolOfObject(global("machines", { addresses: ["10.0.0.0/24"], prefix: 24, addressReuseGracePeriodSeconds: 30 }));
    if ("error" in g) throw new Error(g.error);
    expect([g.pool.name, g.pool.scope.namespaces, g.pool.policy.releaseCooldownMs]).toEqual(["machines", null, 30_000]);
    const n = poolOfObject(inCluster("team-a", "v4", { addresses: ["10.1.0.0/24"], prefix: 24, maxPerNamespace: 5 }));
    if ("error" in n) throw new Error(n.error);
    expect([n.pool.name, [...n.pool.scope.namespaces!], n.pool.scope.maxPerNamespace]).toEqual(["team-a.v4", ["team-a"], 5]);
  });

  test("a namespaced pool may not widen whom it serves or pick its space; a global one may", () => {
    for (const extra of [{ namespaces: ["team-b"] }, { namespaceSelector: { matchLabels: { a: "b" } } }, { space: "other" }]) {
      const made = poolOfObject(inCluster("team-a", "v4", { addresses: ["10.1.0.0/24"], prefix: 24, ...extra }));
      expect("error" in made && made.error).toContain("may not set");
    }
    const g = poolOfObject(global("shared", { addresses: ["10.2.0.0/24"], prefix: 24, namespaces: ["team-b"], space: "lab" }));
    expect("error" in g ? g.error : [...g.pool.scope.namespaces!, g.pool.scope.space]).toEqual(["team-b", "lab"]);
  });

  test("an invalid object makes no pool and says why", () => {
    const bad = poolOfObject(global("bad", { addresses: ["10.0.0.0/24", "fd00::1"], prefix: 24 }));
    expect("error" in bad && bad.error).toContain("GlobalInClusterIPPool bad:");
  });

  test("a selector's namespaces join the named ones; none matched serves none", () => {
    const g = poolOfObject(global("sel", { addresses: ["10.3.0.0/24"], prefix: 24, namespaceSelector: { matchLabels: { team: "x" } } }));
    if ("error" in g) throw new Error(g.error);
    expect([...withSelected(g, ["ns1", "ns2"]).scope.namespaces!]).toEqual(["ns1", "ns2"]);
    expect([...withSelected(g, []).scope.namespaces!]).toEqual([]);
  });

  test("label selectors match as the API server does", () => {
    const labels = { team: "x", tier: "web" };
    expect(matchesSelector({ matchLabels: { team: "x" } }, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { team: "y" } }, labels)).toBe(false);
    expect(matchesSelector({ matchExpressions: [{ key: "tier", operator: "In", values: ["web", "db"] }] }, labels)).toBe(true);
    expect(matchesSelector({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] }, labels)).toBe(false);
    expect(matchesSelector({ matchExpressions: [{ key: "gpu", operator: "Exists" }] }, labels)).toBe(false);
    expect(matchesSelector({ matchExpressions: [{ key: "gpu", operator: "DoesNotExist" }] }, labels)).toBe(true);
    expect(matchesSelector({}, null)).toBe(true);
  });
});
