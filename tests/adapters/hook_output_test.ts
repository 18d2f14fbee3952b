/**
 * A reload hook's output: the end of each stream is logged on the hook's
 * result line, bounded and escaped, and a background process the hook leaves
 * holding the streams open does not hold tbot up. Real processes (`sh`) run
 * by the Deno adapter, reported by the hook policy.
 */
import { HOOK_OUTPUT_TAIL, HookedOutput } from "../../src/agent/hooks/mod.ts";
import { systemClock } from "../../src/agent/clock.ts";
import { noopOutput as inner } from "../agent/_noop_output.ts";
import { createLogger } from "../../src/util/log.ts";
import { denoHookProcesses } from "../../runtime-adapters/deno/hook_processes.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";

async function runHook(script: string, timeout = 10_000): Promise<{ line: string; ms: number }> {
  const lines: string[] = [];
  const hooked = new HookedOutput(inner, { exec: ["sh", "-c", script], timeout }, {
    processes: denoHookProcesses,
    log: createLogger({ component: "tbot", write: (l) => lines.push(l) }),
    clock: systemClock,
    directory: "/o",
  });
  const start = Date.now();
  await hooked.runHook();
  assertEquals(lines.length, 1, lines.join("\n"));
  return { line: lines[0], ms: Date.now() - start };
}

/** A field's value on a text log line (bare, or a quoted escaped string). */
function field(line: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line);
  if (!m) return undefined;
  return m[1].startsWith('"') ? JSON.parse(m[1]) : m[1];
}

Deno.test("hook output: stdout and stderr tails are on the result line", async () => {
  const { line } = await runHook("echo 'reloaded 2 workers'; echo 'nginx: config ok' >&2; exit 3");
  assertStringIncludes(line, "exit_code=3");
  assertEquals(field(line, "stdout"), "reloaded 2 workers");
  assertEquals(field(line, "stderr"), "nginx: config ok");
  const quiet = await runHook("true");
  assertStringIncludes(quiet.line, "reload hook ran");
  assert(!quiet.line.includes("stdout=") && !quiet.line.includes("stderr="), quiet.line);
});

Deno.test("hook output: bounded to the last bytes and escaped into one line", async () => {
  // 200 KB of output, then a line with a terminal escape and a newline.
  const { line } = await runHook(
    "head -c 200000 /dev/zero | tr '\\0' x; printf 'END\\033[2K\\nlast' >&2; printf 'tail-of-stdout'",
  );
  const stdout = field(line, "stdout") ?? "";
  assert(stdout.length <= HOOK_OUTPUT_TAIL, `${stdout.length} characters kept`);
  assert(stdout.endsWith("xxxtail-of-stdout"), stdout.slice(-40));
  assertStringIncludes(line, 'stderr="END\\u001b[2K\\nlast"');
  assertEquals(field(line, "stderr"), "END\x1b[2K\nlast");
  assert(!line.includes("\x1b") && !line.includes("\n"), "one inert line");
});

Deno.test("hook output: a background child holding the streams open does not hold tbot up", async () => {
  const { line, ms } = await runHook("sleep 6 & echo started");
  assertStringIncludes(line, "exit_code=0");
  assertEquals(field(line, "stdout"), "started");
  assert(ms < 5_000, `the hook's result came after ${ms} ms, not when the hook exited`);
  // Killed at the timeout, what it printed before is still reported.
  const hung = await runHook("echo before-hang; exec sleep 30", 500);
  assertStringIncludes(hung.line, "killed_by=SIGKILL");
  assertEquals(field(hung.line, "stdout"), "before-hang");
});
