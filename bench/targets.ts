/**
 * The join targets, judged on numbers measured earlier in the same run:
 * refresh throughput at 50 bots as a share of the Deno KV commit ceiling at
 * 50 in flight (issue #2), the single-bot median latency, and the auth
 * service's CPU per refresh against the crypto floor of a refresh (issue #13).
 *
 * @module
 */
import { CEILING_KEYS } from "./ceilings.ts";
import { JOIN_KEYS } from "./join.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt } from "./stats.ts";

/** Join throughput (50 bots) must reach this share of the KV ceiling (50 in flight). */
export const KV_SHARE_TARGET = 0.6;
/** Single-bot refresh median, ms, on loopback (issue #13; issue #2 asked 3 ms). */
export const P50_TARGET_MS = 4;
/** Auth CPU per refresh at most this multiple of the crypto floor (issue #13). */
export const FLOOR_RATIO_TARGET = 1.5;

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
      const floor = run.values.get(JOIN_KEYS.floor);
      if (p50 !== undefined) {
        const protocol = run.values.get(JOIN_KEYS.protocolP50At1);
        const bare = run.values.get(JOIN_KEYS.transportP50At1);
        const why = protocol === undefined ? "" : `; the protocol floor, measured in alternating ` +
          `blocks with these refreshes, is ${fmt(protocol, 2)} ms: a bare Deno.serve + KV and ` +
          `a bare client replaying the same two round trips with both sides' WebCrypto calls ` +
          `(no hono, zod or Keybound logic${
            bare === undefined ? "" : `; without the crypto ${fmt(bare, 2)} ms`
          }), so Keybound adds ${fmt(p50 - protocol, 2)} ms` +
          (protocol > P50_TARGET_MS
            ? ` and the two-round-trip protocol itself misses the target on this machine`
            : "");
        rows.push({
          metric: "refresh p50 (1 bot)",
          value: fmt(p50, 2),
          unit: "ms",
          verdict: p50 <= P50_TARGET_MS ? "PASS" : "MISS",
          note: `target <= ${P50_TARGET_MS} ms (idle machine)${p50 <= P50_TARGET_MS ? "" : why}`,
        });
        if (protocol !== undefined) {
          rows.push({
            metric: "refresh p50 floor of the protocol (1 bot)",
            value: fmt(protocol, 2),
            unit: "ms",
            note: `two round trips, reads and commit, both sides' WebCrypto calls, nothing ` +
              `else (bench/join_transport_server.ts); the join's p50 is ${
                fmt(p50 / protocol, 2)
              }x this`,
          });
        }
      }
      for (
        const [label, key, transportKey] of [
          ["50 bots", JOIN_KEYS.serverCpuAt50, JOIN_KEYS.transportAt50],
          ["1 bot", JOIN_KEYS.serverCpuAt1, JOIN_KEYS.transportAt1],
        ]
      ) {
        const cpu = run.values.get(key);
        if (cpu === undefined || floor === undefined) continue;
        const ratio = cpu / floor;
        const transport = run.values.get(transportKey);
        const why = transport === undefined
          ? `${fmt(cpu - floor, 2)} ms per refresh outside the crypto`
          : `of the ${fmt(cpu - floor, 2)} ms outside the crypto, ${
            fmt(transport, 2)
          } ms is what a bare Deno.serve + Deno KV spend on the same requests, reads and ` +
            `commit: with the crypto floor that is already ${fmt((floor + transport) / floor, 2)}x`;
        rows.push({
          metric: `auth CPU per refresh / crypto floor (${label})`,
          value: fmt(ratio, 2),
          unit: "x",
          verdict: ratio <= FLOOR_RATIO_TARGET ? "PASS" : "MISS",
          note: `${fmt(cpu, 2)} / ${fmt(floor, 2)} ms; target <= ${FLOOR_RATIO_TARGET}x${
            ratio <= FLOOR_RATIO_TARGET ? "" : `: ${why} (profile: bench/profile_auth.ts)`
          }`,
        });
      }
      return Promise.resolve(rows);
    },
  };
}
