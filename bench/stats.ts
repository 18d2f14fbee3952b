/**
 * Small statistics helpers for benchmarks: percentiles over samples, rates.
 *
 * @module
 */

/** The p-th percentile (0..100) of `samples`, nearest-rank. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** The median of `samples`. */
export function median(samples: number[]): number {
  return percentile(samples, 50);
}

/** Runs `fn` `total` times with at most `concurrency` in flight; returns per-call ms and wall ms. */
export async function runConcurrent(
  total: number,
  concurrency: number,
  fn: (i: number, worker: number) => Promise<void>,
): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (true) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      await fn(i, worker);
      latencies.push(performance.now() - t0);
    }
  }));
  return { latencies, wallMs: performance.now() - start };
}

/** Formats a number with `digits` decimals. */
export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

/** Resident set size of a process, MB, from `/proc/<pid>/status` (Linux). */
export function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
