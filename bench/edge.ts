/**
 * Issue #5 §7: CPU time of one `BotIdentity` renewal in workerd (refresh
 * join + sealed persist), median of many. The measurement itself lives in
 * `tests/workers/do_renewal_bench.ts` (it needs the workerd test harness);
 * this section runs it as a subprocess and reports its numbers.
 *
 * @module
 */
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt } from "./stats.ts";

/** Target: median CPU per renewal, ms (half the Workers free tier's 10 ms). */
export const DO_RENEWAL_TARGET_MS = 5;

/** The Durable Object renewal section. */
export function edgeSection(renewals = 60): BenchSection {
  return {
    id: "edge",
    title: "Durable Object renewal in workerd",
    async run(run) {
      run.log(`edge: ${renewals} BotIdentity renewals in workerd`);
      const script = new URL("../tests/workers/do_renewal_bench.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-kv", script, String(renewals)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const line = text.split("\n").reverse().find((l) => l.startsWith("{"));
      if (!out.success || !line) {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
        return [{ metric: "DO renewal CPU", value: "n/a", note: `failed: ${err}` }];
      }
      const r = JSON.parse(line);
      const rows: BenchRow[] = [
        {
          metric: "DO renewal CPU, net median",
          value: fmt(r.net_median_ms, 2),
          unit: "ms",
          verdict: r.net_median_ms <= DO_RENEWAL_TARGET_MS ? "PASS" : "MISS",
          note: `target <= ${DO_RENEWAL_TARGET_MS} ms; ${r.renewals} renewals`,
        },
        {
          metric: "DO renewal CPU, gross median / p90",
          value: `${fmt(r.median_ms, 2)} / ${fmt(r.p90_ms, 2)}`,
          unit: "ms",
          note: `harness RPC baseline ${fmt(r.rpc_baseline_median_ms, 2)} ms subtracted`,
        },
      ];
      return rows;
    },
  };
}
