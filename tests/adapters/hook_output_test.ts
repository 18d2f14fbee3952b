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
  const start = performance.now();
  await hooked.runHook();
  assertEquals(lines.length, 1, lines.join("\n"));
  return { line: lines[0], ms: performance.now() - start };
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

Deno.test("signal hook: a PID file group or others can write, or another user owns, is refused", async () => {
  const dir = await Deno.makeTempDir();
  // A real process to signal: it records the HUP it gets.
  const child = new Deno.Command("sh", {
    args: ["-c", `trap 'echo hup >> ${dir}/got' HUP; while :; do sleep 0.05; done`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const pidFile = `${dir}/app.pid`;
    await Deno.writeTextFile(pidFile, `${child.pid}\n`);
    const signal = async () => {
      const lines: string[] = [];
      const hooked = new HookedOutput(inner, { signal: "HUP", pid_file: pidFile, timeout: 5_000 }, {
        processes: denoHookProcesses,
        log: createLogger({ component: "tbot", write: (l) => lines.push(l) }),
        clock: systemClock,
        directory: "/o",
      });
      await hooked.runHook();
      return lines.join("\n");
    };
    const got = async () => (await Deno.readTextFile(`${dir}/got`).catch(() => "")).length;
    await Deno.chmod(pidFile, 0o666);
    assertStringIncludes(await signal(), "writable by group or others");
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(await got(), 0, "nothing was signalled");
    if (Deno.uid() === 0) {
      await Deno.chmod(pidFile, 0o644);
      await Deno.chown(pidFile, 65534, null);
      assertStringIncludes(await signal(), "owned by uid 65534");
      await Deno.chown(pidFile, 0, null);
    } else await Deno.chmod(pidFile, 0o644);
    await Deno.chmod(pidFile, 0o644);
    assertStringIncludes(await signal(), "signal=SIGHUP");
    const end = performance.now() + 5_000;
    while ((await got()) === 0 && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert((await got()) > 0, "the process got its HUP");
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
