/**
 * When tbot's daemon gives its heap's free pages back to the operating
 * system ({@linkcode TbotPlatform.releaseMemory}): after a join (a renewal,
 * a recovery), at most once per {@linkcode RELEASE_GAP_MS}.
 *
 * Why: the JavaScript engine keeps the old-generation pages a renewal's
 * garbage was promoted into until its next full collection, which it starts
 * only when the heap has grown by several MB; it gives pages back on its own
 * only once the process has been quiet for a while. A daemon renewing every
 * few seconds is never quiet, so its resident memory climbs by ~5 MB over
 * its first 1,000 renewals with ~13 MB live (docs/benchmarks.md, "Session
 * 7: tbotrss"). The release (V8's memory-reducing "last-resort" collection:
 * two or three mark-compacts) pauses the main thread for 30–36 ms (V8's GC
 * trace, load 2.5): after each renewal of a daemon on the default 20-minute
 * interval, and at most once per 10 s however short the interval. It starts
 * on a timer, after the join's caller has gone on to store the identity: the
 * pause then overlaps the store's writes and fsyncs (run on other threads)
 * instead of coming before them, and the window in which the server has
 * committed a join that tbot has not stored grows only by what the pause
 * outlasts them.
 *
 * @module
 */
import type { BoundJoin, BoundResume } from "../../agent/join_types.ts";
import type { TbotPlatform } from "./platform.ts";

/** The least time between two releases, ms. */
export const RELEASE_GAP_MS = 10_000;

/**
 * `transport` with `release` called each time a join or resume settles
 * (resolved or rejected), on a timer (after the caller's continuation has
 * run to its first wait), unless the previous call was less than
 * {@linkcode RELEASE_GAP_MS} ago by `now` (ms).
 */
export function releasingAfterJoins<T extends { join: BoundJoin; resume: BoundResume }>(
  transport: T,
  release: () => void,
  now: () => number,
): T {
  let last = -Infinity;
  const after = () => {
    const t = now();
    if (t - last < RELEASE_GAP_MS) return;
    last = t;
    setTimeout(release, 0);
  };
  return {
    ...transport,
    join: (p) => transport.join(p).finally(after),
    resume: (p) => transport.resume(p).finally(after),
  };
}

/** {@linkcode releasingAfterJoins} when `platform` can release memory, else `transport` as is. */
export function withHeapRelease<T extends { join: BoundJoin; resume: BoundResume }>(
  transport: T,
  platform: Pick<TbotPlatform, "releaseMemory">,
  now: () => number,
): T {
  const release = platform.releaseMemory;
  return release ? releasingAfterJoins(transport, () => release(), now) : transport;
}
