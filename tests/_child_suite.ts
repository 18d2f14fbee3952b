/**
 * Test files run again in a `deno test` process of their own, for tests
 * that need something the shared run cannot give them: another storage
 * backend under unchanged tests, or a process whose descriptors are theirs
 * alone (`deno test --parallel` runs every file in one process).
 *
 * @module
 */
import { assert } from "./_assert.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/**
 * Runs `files` (paths from the repository's root) with `deno test` in a
 * child process, one file at a time, and fails unless every test passed and
 * at least one ran; returns the summary line.
 */
export async function runTestFiles(
  files: string[],
  what: string,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--unstable-kv", "--no-check", ...files],
    cwd: ROOT,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const summary = text.split("\n").find((l) => /^(ok|FAILED) \| \d+ passed/.test(l)) ?? "";
  assert(out.success, `${what} failed:\n${text.slice(-4000)}`);
  assert(/\| 0 failed/.test(summary) && !/\| 0 passed/.test(summary), `summary: ${summary}`);
  return summary;
}
