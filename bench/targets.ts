/**
 * The targets of issue #2 §7, judged on numbers measured earlier in the same
 * run: refresh throughput at 50 bots as a share of the Deno KV commit
 * ceiling at 50 in flight, and the single-bot median latency.
 *
 * @module
 */
import { CEILING_KEYS } from "./ceilings.ts";
import { JOIN_KEYS } from "./join.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt } from "./stats.ts";

/** Join throughput (50 bots) must reach this share of the KV ceiling (50 in flight). */
export const KV_SHARE_TARGET = 0.6;
/** Single-bot refresh median, ms, on an idle machine. */
export const P50_TARGET_MS = 3;

/** The verdict section; needs the `ceilings` and `join` sections to have run before it. */
export function targetsSection(): BenchSection {
  return {
    id: "targets",
    title: "targets",
    run(run) {
      const rows: BenchRow[] = [];
      const join50 = run.values.get(JOIN_KEYS.rateAt50);
      const kv50 = run.values.get(CEILING_KEYS.kvAt50);
      if (join50 !== undefined && kv50 !== undefined) {
        const share = join50 / kv50;
        rows.push({
          metric: "join(50 bots) / KV commits(50 in flight)",
          value: fmt(100 * share, 1),
          unit: "%",
          verdict: share >= KV_SHARE_TARGET ? "PASS" : "MISS",
          note: `target >= ${100 * KV_SHARE_TARGET}%`,
        });
      }
      const p50 = run.values.get(JOIN_KEYS.p50At1);
      if (p50 !== undefined) {
        rows.push({
          metric: "refresh p50 (1 bot)",
          value: fmt(p50, 2),
          unit: "ms",
          verdict: p50 <= P50_TARGET_MS ? "PASS" : "MISS",
          note: `target <= ${P50_TARGET_MS} ms (idle machine)`,
        });
      }
      return Promise.resolve(rows);
    },
  };
}
