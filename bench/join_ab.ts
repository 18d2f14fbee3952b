/**
 * A/B of two checkouts' auth services under refresh joins of one bot each
 * (dev tool, not part of `deno task bench`): both processes run at once, the
 * bench refreshes them in alternating blocks (A B B A …) so the machine's
 * load weighs on both alike, and prints per block pair the p50 ratio and the
 * auth CPU ratio (B/A), with their medians. Run it twice with the checkouts
 * swapped: the slot's own bias (an A/A reads 1.04–1.09 here) then cancels.
 *
 * `deno run -A --unstable-kv bench/join_ab.ts <checkout A> <checkout B> [pairs] [block size] [roles]`
 * (`roles`: the bot's number of roles, which a join reads; the bench's bots have none).
 *
 * @module
 */
import { BENCH_CERTIFICATE_KEY, cpuSeconds, onboardBots, refresh, startAuth } from "./join.ts";
import { fmt, median } from "./stats.ts";

const [checkoutA, checkoutB] = Deno.args;
if (!checkoutA || !checkoutB) {
  throw new Error("usage: join_ab.ts <checkout A> <checkout B> [pairs] [block size] [roles]");
}
const pairs = Number(Deno.args[2] ?? 20);
const size = Number(Deno.args[3] ?? 50);
const roles = Number(Deno.args[4] ?? 0);

const dir = await Deno.makeTempDir({ prefix: "keybound-join-ab-" });
const sides = await Promise.all([checkoutA, checkoutB].map(async (checkout, i) => {
  const auth = await startAuth(`${dir}/${i}`, {
    entry: `${checkout}/runtime-adapters/deno/entry/auth.ts`,
  });
  const [bot] = await onboardBots(auth, 1, BENCH_CERTIFICATE_KEY, "bench", roles);
  // Warm-up: the JIT and the caches of both, before any block counts.
  for (let j = 0; j < 100; j++) await refresh(auth, bot);
  return { auth, bot, p50: [] as number[], cpu: [] as number[] };
}));

/** One block on a side: its p50 (ms) and its auth CPU per refresh (ms). */
async function block(side: (typeof sides)[number]): Promise<void> {
  const times: number[] = [];
  const c0 = await cpuSeconds(side.auth.pid);
  for (let i = 0; i < size; i++) {
    const t0 = performance.now();
    await refresh(side.auth, side.bot);
    times.push(performance.now() - t0);
  }
  const c1 = await cpuSeconds(side.auth.pid);
  side.p50.push(median(times));
  side.cpu.push(c0 === null || c1 === null ? NaN : (c1 - c0) * 1000 / size);
}

try {
  console.log(`load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (let p = 0; p < pairs; p++) {
    for (const s of p % 2 ? [sides[1], sides[0]] : sides) await block(s);
  }
  const [a, b] = sides;
  const p50Ratios = a.p50.map((v, i) => b.p50[i] / v);
  const cpuRatios = a.cpu.map((v, i) => b.cpu[i] / v);
  console.log(`A ${checkoutA}\nB ${checkoutB}`);
  console.log(`${pairs} pairs of ${size} refreshes; medians of the blocks:`);
  console.log(`  p50 ms   A ${fmt(median(a.p50), 3)}  B ${fmt(median(b.p50), 3)}`);
  console.log(`  CPU ms   A ${fmt(median(a.cpu), 3)}  B ${fmt(median(b.cpu), 3)}`);
  console.log(`  p50 B/A  ${fmt(median(p50Ratios), 3)} (median of pair ratios)`);
  console.log(`  CPU B/A  ${fmt(median(cpuRatios), 3)}`);
  console.log(`load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
} finally {
  await Promise.all(sides.map((s) => s.auth.stop()));
  await Deno.remove(dir, { recursive: true });
}
