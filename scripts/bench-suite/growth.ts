/**
 * Section 6, cost growth: ADD latency (one client) and throughput (64 clients) through the
 * socket at each number of live allocations, each against the empty daemon sampled in the
 * same minutes (throughput.ts), as table rows with a verdict and a small SVG plot written
 * next to results.json — two panels over a log axis, so a flat curve reads as flat.
 */
import { type Figure, verdict } from "./common.ts";
import type { GrowthPoint } from "./throughput.ts";

/** Flat: at every level, latency ≤ 1.2× and throughput ≥ 0.8× the empty daemon's. */
export const GROWTH_LATENCY_MAX = 1.2;
export const GROWTH_THROUGHPUT_MIN = 0.8;

export function growthFigures(points: GrowthPoint[]): Figure[] {
  const first = points[0]!;
  const live = (n: number) => n.toLocaleString("en");
  return points.flatMap((p) => {
    const latency = p.addP50 / p.empty.addP50;
    const throughput = p.perSecond / p.empty.perSecond;
    const vsFirst = (x: number, y: number) => (p === first ? "" : `; ${(x / y).toFixed(2)}× the filled daemon at ${live(first.live)}`);
    return [
      {
        section: "6 growth",
        name: `ADD latency, ${live(p.live)} live (1 client, socket)`,
        unit: "ms p50",
        ipamd: p.addP50,
        peer: p.empty.addP50,
        peerName: "ipamd, empty daemon (same minutes)",
        ratio: latency,
        target: `≤ ${GROWTH_LATENCY_MAX}× empty`,
        pass: latency <= GROWTH_LATENCY_MAX,
        detail: verdict(latency <= GROWTH_LATENCY_MAX, `${latency.toFixed(2)}×; p99 ${p.addP99.toFixed(2)} vs ${p.empty.addP99.toFixed(2)} ms${vsFirst(p.addP50, first.addP50)}`),
      },
      {
        section: "6 growth",
        name: `ADD+DEL throughput, ${live(p.live)} live (64 clients)`,
        unit: "allocations/s",
        ipamd: p.perSecond,
        peer: p.empty.perSecond,
        peerName: "ipamd, empty daemon (same minutes)",
        ratio: throughput,
        target: `≥ ${GROWTH_THROUGHPUT_MIN}× empty`,
        pass: throughput >= GROWTH_THROUGHPUT_MIN,
        detail: verdict(throughput >= GROWTH_THROUGHPUT_MIN, `${throughput.toFixed(2)}×${vsFirst(p.perSecond, first.perSecond)}`),
      },
    ];
  });
}

const W = 320;
const H = 200;
const M = { left: 52, right: 12, top: 28, bottom: 36 };

function panel(x0: number, title: string, points: GrowthPoint[], series: { label: string; color: string; value: (p: GrowthPoint) => number }[], unit: string): string {
  const lx = (live: number) => Math.log10(live);
  const xs = points.map((p) => lx(p.live));
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const yMax = Math.max(...points.flatMap((p) => series.map((s) => s.value(p)))) * 1.15 || 1;
  const px = (live: number) => x0 + M.left + ((lx(live) - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const py = (v: number) => M.top + (1 - v / yMax) * (H - M.top - M.bottom);
  const out: string[] = [`<text x="${x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">${title}</text>`];
  out.push(`<line x1="${x0 + M.left}" y1="${py(0)}" x2="${x0 + W - M.right}" y2="${py(0)}" stroke="#888"/>`);
  out.push(`<line x1="${x0 + M.left}" y1="${M.top}" x2="${x0 + M.left}" y2="${py(0)}" stroke="#888"/>`);
  for (const f of [0, 0.5, 1]) {
    const v = yMax * f;
    out.push(`<text x="${x0 + M.left - 4}" y="${py(v) + 4}" text-anchor="end">${v >= 100 ? Math.round(v).toLocaleString("en") : v.toFixed(2)}</text>`);
  }
  out.push(`<text x="${x0 + 4}" y="${M.top - 6}">${unit}</text>`);
  for (const p of points) out.push(`<text x="${px(p.live)}" y="${H - M.bottom + 16}" text-anchor="middle">${p.live >= 1e6 ? `${p.live / 1e6}M` : `${p.live / 1e3}k`}</text>`);
  out.push(`<text x="${x0 + W / 2}" y="${H - 4}" text-anchor="middle">live allocations (log)</text>`);
  series.forEach((s, k) => {
    const path = points.map((p) => `${px(p.live).toFixed(1)},${py(s.value(p)).toFixed(1)}`).join(" ");
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${path}"/>`);
    for (const p of points) out.push(`<circle cx="${px(p.live).toFixed(1)}" cy="${py(s.value(p)).toFixed(1)}" r="3" fill="${s.color}"/>`);
    out.push(`<text x="${x0 + M.left + 8}" y="${M.top + 12 + 14 * k}" fill="${s.color}">${s.label}</text>`);
  });
  return out.join("\n");
}

export function growthSvg(points: GrowthPoint[], caption: string): string {
  const body = [
    panel(0, "ADD latency, 1 client", points, [
      { label: "p50", color: "#1f77b4", value: (p) => p.addP50 },
      { label: "p99", color: "#ff7f0e", value: (p) => p.addP99 },
      { label: "p50, empty daemon", color: "#9ecae1", value: (p) => p.empty.addP50 },
    ], "ms"),
    panel(W, "ADD+DEL throughput, 64 clients", points, [
      { label: "allocations/s", color: "#2ca02c", value: (p) => p.perSecond },
      { label: "empty daemon", color: "#a1d99b", value: (p) => p.empty.perSecond },
    ], "per s"),
  ].join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 18}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${body}
<text x="${W}" y="${H + 14}" text-anchor="middle" fill="#555">${caption.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</text>
</svg>
`;
}
