/** How the dashboard writes numbers, times and identifiers: short, exact on hover. */
import { readableCount } from "../../readable.ts";

/** A count as "12,345"; a count too large to read (an IPv6 pool's size) as a power of two. */
export function formatCount(decimal: string | number): string {
  const text = String(decimal);
  return /^\d+$/.test(text) ? readableCount(text) : text;
}

/** A utilization as the report gives it (two decimals), never rounding a used pool to "0%". */
export function formatPercent(utilization: number, used: number): string {
  if (used > 0 && utilization < 0.01) return "<0.01%";
  return `${Number.isInteger(utilization) ? utilization : utilization.toFixed(utilization < 10 ? 2 : 1)}%`;
}

/** "2025-11-23 20:08:31 UTC": absolute and zone-free, so every operator reads the same time. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** "just now", "5 min ago", "3 h ago", "12 days ago". */
export function formatAgo(ms: number, now: number): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return "in the future";
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  const days = Math.floor(s / 86_400);
  if (days < 365) return `${days} day${days === 1 ? "" : "s"} ago`;
  return formatTime(ms).slice(0, 10);
}

/** Container IDs are 64 hex digits; 12 name one as `docker ps` and `crictl ps` do. */
export const shortId = (id: string): string => (id.length > 13 ? `${id.slice(0, 12)}…` : id);

/** The utilization level that colours a bar: amber from 80%, red from 95%. */
export function levelOf(utilization: number): "ok" | "warn" | "crit" {
  if (utilization >= 95) return "crit";
  if (utilization >= 80) return "warn";
  return "ok";
}

export const addressHref = (ip: string): string => `/address/${encodeURIComponent(ip)}`;

/** A link to the allocations page with these query parameters (empty ones left out). */
export function allocationsHref(params: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== "") query.set(key, String(value));
  const text = query.toString();
  return text ? `/allocations?${text}` : "/allocations";
}
