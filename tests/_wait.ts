/**
 * The one polling helper of the tests: bounded waiting for asynchronous work
 * a fake clock does not drive (crypto, HTTP, child processes). Polls in real
 * time and gives up with a message naming what it waited for.
 *
 * @module
 */

/** How long and how often {@linkcode waitUntil} polls. */
export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between polls (default 5 ms). */
  intervalMs?: number;
}

/** Resolves once `cond` holds; throws naming `what` if it never does. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what = "condition",
  o: WaitOptions = {},
): Promise<void> {
  const interval = o.intervalMs ?? 5;
  // Monotonic: the wall clock here has stepped 32 s forward in the middle of a test.
  const deadline = performance.now() + (o.timeoutMs ?? 10_000);
  while (true) {
    if (await cond()) return;
    if (performance.now() >= deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
