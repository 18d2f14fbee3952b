/**
 * The ceilings a join cannot beat on this machine: raw Ed25519 sign+verify
 * and raw Deno KV atomic commits (check + set), measured in the same run as
 * the joins so their ratio is meaningful on a noisy machine.
 *
 * @module
 */
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt, runConcurrent } from "./stats.ts";

/** Ed25519 sign+verify pairs per second, one at a time and `concurrency` in flight. */
export async function ed25519Rate(total: number, concurrency: number): Promise<number> {
  const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const msg = crypto.getRandomValues(new Uint8Array(256));
  const { wallMs } = await runConcurrent(total, concurrency, async () => {
    const sig = await crypto.subtle.sign({ name: "Ed25519" }, kp.privateKey, msg);
    if (!await crypto.subtle.verify({ name: "Ed25519" }, kp.publicKey, sig, msg)) {
      throw new Error("verify failed");
    }
  });
  return total / (wallMs / 1000);
}

/**
 * Deno KV atomic commits per second on disk: each commit checks a key's
 * versionstamp and sets it, the shape of a join's compare-and-swap.
 */
export async function kvCommitRate(
  path: string,
  total: number,
  concurrency: number,
): Promise<number> {
  const kv = await Deno.openKv(path);
  try {
    const value = { payload: "x".repeat(512) };
    const { wallMs } = await runConcurrent(total, concurrency, async (i) => {
      const key = ["bench", String(i % 1000), String(i)];
      const r = await kv.atomic().check({ key, versionstamp: null }).set(key, value).commit();
      if (!r.ok) throw new Error("commit failed");
    });
    return total / (wallMs / 1000);
  } finally {
    kv.close();
  }
}

/** Keys this section publishes in `BenchRun.values`. */
export const CEILING_KEYS = {
  ed25519At1: "ceiling.ed25519.1",
  ed25519At50: "ceiling.ed25519.50",
  kvAt1: "ceiling.kv.1",
  kvAt50: "ceiling.kv.50",
} as const;

/** The ceilings section: Ed25519 sign+verify and KV commits, 1 and 50 in flight. */
export function ceilingsSection(sizes = { ed25519: 4000, kv: 3000 }): BenchSection {
  return {
    id: "ceilings",
    title: "ceilings (same run, same machine)",
    async run(run) {
      const rows: BenchRow[] = [];
      for (const c of [1, 50]) {
        const rate = await ed25519Rate(sizes.ed25519, c);
        run.values.set(c === 1 ? CEILING_KEYS.ed25519At1 : CEILING_KEYS.ed25519At50, rate);
        rows.push({
          metric: `Ed25519 sign+verify (${c} in flight)`,
          value: fmt(rate, 0),
          unit: "pairs/s",
          note: `${sizes.ed25519} pairs`,
        });
      }
      for (const c of [1, 50]) {
        // A fresh file per level, so the second does not run on a warmer, bigger database.
        const rate = await kvCommitRate(`${run.workDir}/ceiling-kv-${c}.sqlite`, sizes.kv, c);
        run.values.set(c === 1 ? CEILING_KEYS.kvAt1 : CEILING_KEYS.kvAt50, rate);
        rows.push({
          metric: `Deno KV check+set commits (${c} in flight)`,
          value: fmt(rate, 0),
          unit: "commits/s",
          note: `${sizes.kv} commits, on disk`,
        });
      }
      return rows;
    },
  };
}
