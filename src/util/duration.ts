/**
 * Go-style durations ("1h", "20m", "1h30m", "90s", "500ms"), as Teleport's
 * YAML uses them.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration to milliseconds; throws `TypeError` on bad input. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) throw new BadParameterError(`invalid duration "${text}" (examples: 90s, 20m, 1h30m)`);
    total += parseFloat(m[1]) * UNITS[m[2]];
    i = re.lastIndex;
  }
  if (s.length === 0) throw new BadParameterError("empty duration");
  return total;
}

/** Formats milliseconds as a Go duration ("1h0m0s" style, compacted: "1h", "20m", "1h30m"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
