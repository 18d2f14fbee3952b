/**
 * `deno task bench`: runs the benchmark sections in one process and prints
 * one table. Ceilings and joins are measured in the same run so their ratio
 * holds on a noisy machine. Pass section ids to run only those (e.g.
 * `deno task bench ops`); `targets` needs `ceilings` and `join` before it.
 *
 * Sections: KV and Ed25519 ceilings, refresh joins against one auth
 * process, the issue #2 targets, per-operation costs, tbot oneshot time and
 * daemon RSS (issue #3), a Durable Object renewal in workerd (issue #5), and
 * refresh joins on Deno KV vs PostgreSQL with 1 and 2 instances behind HAProxy
 * plus the PostgreSQL commit ceiling (issue #9), auth memory under a begin
 * flood (issue #8), and a seeded 10,000-bot fleet's listings (issue #13).
 *
 * @module
 */
import { ceilingsSection } from "./ceilings.ts";
import { joinSection } from "./join.ts";
import { opCostSection } from "./ops.ts";
import { type BenchRow, type BenchRun, type BenchSection, renderTable } from "./report.ts";
import { targetsSection } from "./targets.ts";
import { edgeSection } from "./edge.ts";
import { tbotSection } from "./tbot_section.ts";
import { haSection } from "./ha.ts";
import { floodSection } from "./flood.ts";
import { fleetSection } from "./fleet.ts";

/** Every section, in run order. */
export const SECTIONS: BenchSection[] = [
  ceilingsSection(),
  joinSection(),
  targetsSection(),
  opCostSection(),
  tbotSection(),
  edgeSection(),
  haSection(),
  floodSection(),
  fleetSection(),
];

/** Runs `sections` and returns the rendered table. */
export async function runBench(sections: BenchSection[]): Promise<string> {
  const workDir = await Deno.makeTempDir({ prefix: "keybound-bench-" });
  const run: BenchRun = {
    workDir,
    values: new Map(),
    log: (m) => console.error(`[bench] ${m}`),
  };
  const results: { section: BenchSection; rows: BenchRow[] }[] = [];
  try {
    for (const section of sections) {
      const t0 = performance.now();
      run.log(`${section.id}: ${section.title}`);
      let rows: BenchRow[];
      try {
        rows = await section.run(run);
      } catch (err) {
        // One broken section must not cost the rest of a long run its numbers.
        run.log(`${section.id}: failed: ${(err as Error).stack ?? err}`);
        rows = [{
          metric: "section failed",
          value: "-",
          verdict: "MISS",
          note: String((err as Error).message ?? err).split("\n")[0],
        }];
      }
      results.push({ section, rows });
      run.log(`${section.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await Deno.remove(workDir, { recursive: true });
  }
  return renderTable(results);
}

if (import.meta.main) {
  const wanted = new Set(Deno.args);
  const unknown = [...wanted].filter((id) => !SECTIONS.some((s) => s.id === id));
  if (unknown.length > 0) {
    console.error(
      `unknown section(s): ${unknown.join(", ")}; known: ${SECTIONS.map((s) => s.id).join(", ")}`,
    );
    Deno.exit(2);
  }
  const started = performance.now();
  const table = await runBench(SECTIONS.filter((s) => wanted.size === 0 || wanted.has(s.id)));
  const cpus = navigator.hardwareConcurrency;
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  console.log(
    `Keybound benchmark — ${
      new Date().toISOString()
    }, deno ${Deno.version.deno}, ${cpus} CPUs, load ${load}, ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
  console.log(table);
}
