/**
 * Bounded waiting for asynchronous work a fake clock does not drive (crypto,
 * in-process HTTP). Polls in real time; gives up after about ten seconds.
 *
 * @module
 */

/** Resolves once `cond` holds; throws naming `what` if it never does. */
export async function waitUntil(cond: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`gave up waiting for ${what}`);
}
