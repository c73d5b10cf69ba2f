/** Kubernetes label selectors (matchLabels and matchExpressions), as the API server matches them. */
import type { LabelSelector } from "../kube/schemas/meta.ts";

export function matchesSelector(selector: LabelSelector, labels: Record<string, string> | null | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, e.key);
    const values = e.values ?? [];
    if (e.operator === "In" && !(present && values.includes(have[e.key]!))) return false;
    if (e.operator === "NotIn" && present && values.includes(have[e.key]!)) return false;
    if (e.operator === "Exists" && !present) return false;
    if (e.operator === "DoesNotExist" && present) return false;
  }
  return true;
}
