/**
 * `src/` must run unchanged on Deno, in workerd and in browsers, so it may only
 * use web-standard APIs. This test scans every TypeScript file under `src/`
 * and fails, naming file:line, on anything runtime-specific.
 *
 * @module
 */
import { assert } from "../_assert.ts";

const SRC = new URL("../../src/", import.meta.url);

/** A forbidden pattern and why it is forbidden. */
interface Rule {
  pattern: RegExp;
  reason: string;
}

const RULES: Rule[] = [
  { pattern: /\bDeno\./, reason: "Deno.* API (belongs in runtime-adapters/deno/)" },
  { pattern: /from\s+["']node:/, reason: "node:* import" },
  { pattern: /import\s*\(\s*["']node:/, reason: "dynamic node:* import" },
  {
    pattern: /["']cloudflare:/,
    reason: "cloudflare:* import (belongs in runtime-adapters/workers/)",
  },
  { pattern: /@cloudflare\/workers-types/, reason: "@cloudflare/workers-types reference" },
];

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    const child = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* walk(child);
    else if (e.isFile && e.name.endsWith(".ts")) yield child;
  }
}

// Prose in comments may name runtime APIs (to explain why they are avoided);
// only code is a dependency. Triple-slash directives are code, though.
const COMMENT_LINE = /^\s*(\/\/(?!\/\s*<reference)|\/\*|\*)/;

/** Returns one "file:line: reason: text" string per violation in `text`. */
export function findViolations(path: string, text: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (COMMENT_LINE.test(line)) return;
    for (const rule of RULES) {
      if (rule.pattern.test(line)) out.push(`${path}:${i + 1}: ${rule.reason}: ${line.trim()}`);
    }
  });
  return out;
}

Deno.test("src/ uses no Deno, node or Cloudflare-specific APIs", async () => {
  const violations: string[] = [];
  let files = 0;
  for await (const file of walk(SRC)) {
    files++;
    const rel = "src/" + file.pathname.slice(SRC.pathname.length);
    violations.push(...findViolations(rel, await Deno.readTextFile(file)));
  }
  assert(files > 0, "no .ts files found under src/");
  assert(violations.length === 0, `runtime-specific code in src/:\n${violations.join("\n")}`);
});

Deno.test("findViolations() reports each forbidden form with its line number", () => {
  const sample = [
    "const ok = crypto.subtle;",
    "const x = Deno.env.get('X');",
    'import fs from "node:fs";',
    'const m = await import("node:crypto");',
    'import { DurableObject } from "cloudflare:workers";',
    '/// <reference types="@cloudflare/workers-types" />',
    'type Env = import("@cloudflare/workers-types").Env;',
    " * Deno.openKv is named in prose only",
  ].join("\n");
  const found = findViolations("src/sample.ts", sample);
  assert(found.length === 6, `expected 6 violations, got ${found.length}: ${found.join("; ")}`);
  for (const [i, line] of [2, 3, 4, 5, 6, 7].entries()) {
    assert(found[i].startsWith(`src/sample.ts:${line}:`), `unexpected report ${found[i]}`);
  }
});
