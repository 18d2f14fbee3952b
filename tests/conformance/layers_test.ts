/**
 * The import rules of docs/architecture.md: the agent never imports
 * `src/server/`, the server never imports `src/agent/`, and the CLI never
 * imports `src/server/`. This test resolves every relative import under those
 * folders and fails, naming file:line, on one that crosses a boundary.
 *
 * @module
 */
import { assert } from "../_assert.ts";

const SRC = new URL("../../src/", import.meta.url);

/** Folders (under src/) that a folder must not import from. */
const FORBIDDEN: Record<string, string[]> = {
  "agent/": ["server/"],
  "server/": ["agent/"],
  "cli/": ["server/"],
};

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    const child = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* walk(child);
    else if (e.isFile && e.name.endsWith(".ts")) yield child;
  }
}

const IMPORT = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

/** Returns one "file:line: text" string per import of `file` that crosses a boundary. */
export function crossings(file: URL, text: string): string[] {
  const rel = file.pathname.slice(SRC.pathname.length);
  const banned = Object.entries(FORBIDDEN).find(([from]) => rel.startsWith(from))?.[1] ?? [];
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(IMPORT)) {
      const target = new URL(m[1], file).pathname.slice(SRC.pathname.length);
      if (banned.some((b) => target.startsWith(b))) out.push(`src/${rel}:${i + 1}: ${line.trim()}`);
    }
  });
  return out;
}

Deno.test("src/agent, src/server and src/cli import across no forbidden boundary", async () => {
  const found: string[] = [];
  let files = 0;
  for (const folder of Object.keys(FORBIDDEN)) {
    for await (const file of walk(new URL(folder, SRC))) {
      files++;
      found.push(...crossings(file, await Deno.readTextFile(file)));
    }
  }
  assert(files > 0, "no .ts files found");
  assert(found.length === 0, `imports across a layer boundary:\n${found.join("\n")}`);
});

Deno.test("crossings() reports a server file importing the agent, with its line", () => {
  const file = new URL("server/metrics.ts", SRC);
  const sample = [
    'import { Metric } from "../util/prometheus.ts";',
    'import { Metric } from "../agent/metrics.ts";',
    'export { x } from "./join/mod.ts";',
  ].join("\n");
  const found = crossings(file, sample);
  assert(found.length === 1 && found[0].startsWith("src/server/metrics.ts:2:"), found.join("; "));
});
