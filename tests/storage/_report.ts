/**
 * Turns conformance results (possibly produced in another runtime) into
 * Deno test steps: failures fail, skips show as ignored steps with the
 * reason printed.
 *
 * @module
 */
import { assert } from "../_assert.ts";
import type { CaseResult } from "./_results.ts";

/** One test step per result. */
export async function reportResults(t: Deno.TestContext, results: CaseResult[]): Promise<void> {
  assert(results.length > 0, "no conformance results");
  for (const r of results) {
    if (r.outcome === "skipped") console.log(`  skipped "${r.name}": ${r.detail}`);
    await t.step({
      name: r.name,
      ignore: r.outcome === "skipped",
      fn: () => assert(r.outcome === "passed", `${r.name}: ${r.detail}`),
    });
  }
}
