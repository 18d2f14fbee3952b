/**
 * Results of conformance checks in a form that crosses runtime boundaries
 * (plain JSON), and the runner that produces them. Runtime-agnostic: runs
 * under Deno and, bundled, inside workerd.
 *
 * @module
 */

/** The outcome of one check. */
export interface CaseResult {
  /** The check's name. */
  name: string;
  /** "passed", "failed", or "skipped" (a capability is missing). */
  outcome: "passed" | "failed" | "skipped";
  /** The failure message, or why it was skipped. */
  detail?: string;
}

/** A named check needing an optional capability. */
export interface NamedCase<Capabilities, Subject> {
  /** Human-readable name (the test step's name). */
  name: string;
  /** The capability the check needs, if any. */
  requires?: keyof Capabilities;
  /** Runs the check. */
  run(subject: Subject): Promise<void>;
}

/**
 * Runs `cases` in order, each on a fresh subject from `open` (released with
 * `close`), skipping those whose capability is missing; never throws.
 */
export async function runCases<Capabilities, Subject>(
  cases: readonly NamedCase<Capabilities, Subject>[],
  capabilities: Capabilities,
  open: () => Promise<Subject>,
  close: (subject: Subject) => Promise<void>,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    if (c.requires && !capabilities[c.requires]) {
      results.push({ name: c.name, outcome: "skipped", detail: `lacks ${String(c.requires)}` });
      continue;
    }
    const subject = await open();
    try {
      await c.run(subject);
      results.push({ name: c.name, outcome: "passed" });
    } catch (e) {
      results.push({ name: c.name, outcome: "failed", detail: String((e as Error)?.stack ?? e) });
    } finally {
      await close(subject);
    }
  }
  return results;
}
