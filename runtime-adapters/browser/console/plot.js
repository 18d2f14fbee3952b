// Small inline-SVG charts built from audit events: a bar per time bucket,
// a bar per failure code. Labels are text nodes like everything else.
import { svg } from "./dom.js";

const W = 420;
const H = 160;
const PAD = { left: 34, right: 8, top: 10, bottom: 34 };

function frame(id, title, bars, barClass) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const bw = bars.length ? innerW / bars.length : innerW;
  const y = (v) => PAD.top + innerH - (v / max) * innerH;
  const every = Math.max(1, Math.ceil(bars.length / 6));
  return svg(
    "svg",
    { id, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": title },
    svg("title", {}, title),
    svg("line", {
      class: "axis",
      x1: PAD.left,
      y1: PAD.top + innerH,
      x2: W - PAD.right,
      y2: PAD.top + innerH,
    }),
    svg("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + innerH }),
    svg("text", { x: 2, y: PAD.top + 8 }, String(max)),
    svg("text", { x: 2, y: PAD.top + innerH }, "0"),
    bars.map((b, i) => [
      svg(
        "rect",
        {
          class: barClass,
          x: (PAD.left + i * bw + 1).toFixed(1),
          y: y(b.value).toFixed(1),
          width: Math.max(1, bw - 2).toFixed(1),
          height: (PAD.top + innerH - y(b.value)).toFixed(1),
          "data-label": b.label,
          "data-value": b.value,
        },
        svg("title", {}, `${b.label}: ${b.value}`),
      ),
      i % every === 0
        ? svg(
          "text",
          { x: (PAD.left + i * bw + 2).toFixed(1), y: H - PAD.bottom + 14 },
          b.short ?? b.label,
        )
        : null,
    ]),
    bars.length === 0 ? svg("text", { x: PAD.left + 10, y: PAD.top + 20 }, "no events") : null,
  );
}

/** Joins and renewals (`bot.join`) per time bucket across the events' span (at most 24 buckets). */
export function renewalsChart(events) {
  const times = events.map((e) => new Date(e.time).getTime()).filter((t) => !Number.isNaN(t));
  const bars = [];
  if (times.length) {
    const lo = Math.min(...times);
    const hi = Math.max(...times);
    const minute = 60_000;
    const step = Math.max(minute, Math.ceil((hi - lo + 1) / 24 / minute) * minute);
    const start = Math.floor(lo / step) * step;
    const n = Math.floor((hi - start) / step) + 1;
    for (let i = 0; i < n; i++) {
      const t = new Date(start + i * step);
      bars.push({ label: t.toISOString(), short: t.toISOString().slice(11, 16), value: 0 });
    }
    for (const t of times) bars[Math.floor((t - start) / step)].value++;
  }
  return frame("renewals-chart", "Joins and renewals over time (bot.join)", bars, "bar");
}

/** Failures by error code: counted join failures plus every other failed event. */
export function failuresChart(events) {
  const byCode = new Map();
  for (const e of events) {
    if (e.status?.success !== false) continue;
    const code = typeof e.error === "string" ? e.error : e.status.error ?? "unknown";
    const n = typeof e.count === "number" ? e.count : 1;
    byCode.set(code, (byCode.get(code) ?? 0) + n);
  }
  const bars = [...byCode].sort((a, b) => b[1] - a[1]).slice(0, 12)
    .map(([code, value]) => ({ label: code, short: code.slice(0, 10), value }));
  return frame("failures-chart", "Failures by code", bars, "bar-fail");
}
