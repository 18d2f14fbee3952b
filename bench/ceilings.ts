/**
 * The ceilings a join cannot beat on this machine: raw Ed25519 sign+verify
 * and raw Deno KV atomic commits (check + set), measured in the same run as
 * the joins so their ratio is meaningful on a noisy machine.
 *
 * @module
 */
import { runConcurrent } from "./stats.ts";

/** Ed25519 sign+verify pairs per second, one at a time and `concurrency` in flight. */
export async function ed25519Rate(total: number, concurrency: number): Promise<number> {
  const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]) as CryptoKeyPair;
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
export async function kvCommitRate(path: string, total: number, concurrency: number): Promise<number> {
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
