/**
 * The shape every benchmark section shares, so `bench/main.ts` can run any
 * list of sections in one process and print their rows as one table. A
 * section stores the numbers later sections compare against in
 * `run.values` (e.g. the KV ceiling the join ratio is computed from).
 *
 * @module
 */

/** One printed row. */
export interface BenchRow {
  /** What was measured, e.g. "refresh joins/s (50 bots)". */
  metric: string;
  /** The number, already formatted. */
  value: string;
  /** Unit, e.g. "ops/s" or "ms". */
  unit?: string;
  /** Verdict against a target, when the row has one. */
  verdict?: "PASS" | "MISS";
  /** Short context (target, sample size). */
  note?: string;
}

/** State shared by the sections of one run. */
export interface BenchRun {
  /** A private temporary directory, removed after the run. */
  workDir: string;
  /** Numbers sections publish for later ones, by key (see each section's docs). */
  values: Map<string, number>;
  /** Progress output (stderr), so the table on stdout stays clean. */
  log(message: string): void;
}

/** A part of the benchmark. */
export interface BenchSection {
  /** Short id, selectable with `deno task bench <id>…`. */
  id: string;
  /** Heading printed above the section's rows. */
  title: string;
  /** Measures and returns the rows. */
  run(run: BenchRun): Promise<BenchRow[]>;
}

/** Renders sections' rows as a plain-text table (Markdown-compatible). */
export function renderTable(results: { section: BenchSection; rows: BenchRow[] }[]): string {
  const header = ["section", "metric", "value", "unit", "verdict", "note"];
  const lines = results.flatMap(({ section, rows }) =>
    rows.map((r) => [
      section.id,
      r.metric,
      r.value,
      r.unit ?? "",
      r.verdict ?? "",
      r.note ?? "",
    ])
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  return [
    row(header),
    "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|",
    ...lines.map(row),
  ].join("\n");
}
