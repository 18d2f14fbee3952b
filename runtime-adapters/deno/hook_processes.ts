/**
 * The Deno side of reload hooks: starts a hook's program with exactly the
 * environment the policy built, keeps the end of its output, kills it at the
 * timeout, reads PID files and sends signals. What runs, with what
 * environment, and how results are reported is decided in `src/agent/hooks/`.
 *
 * @module
 */
import {
  HOOK_OUTPUT_TAIL,
  HOOK_PATH,
  type HookExit,
  type HookProcesses,
} from "../../src/agent/hooks/mod.ts";
import { KeyboundError } from "../../src/errors.ts";
import { missingPermission, programToRun } from "./permissions.ts";

/**
 * Refuses, with `HOOK_FAILED` naming the flag, what this process may not do
 * yet (`missing` says what): on a terminal Deno would otherwise prompt and
 * wait (./permissions.ts).
 */
function refuseIf(missing: string | undefined): void {
  if (missing) throw new KeyboundError("HOOK_FAILED", missing);
}

/**
 * How long the output streams may stay open after the hook exits: a
 * background process it started may hold them open for ever, and tbot must
 * not wait for that.
 */
const DRAIN_AFTER_EXIT_MS = 200;

/** Reads `stream` to its end (or until cancelled), keeping the last `HOOK_OUTPUT_TAIL` bytes. */
function tailOf(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  let kept = new Uint8Array(0);
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const joined = new Uint8Array(kept.length + value.length);
        joined.set(kept);
        joined.set(value, kept.length);
        kept = joined.slice(Math.max(0, joined.length - HOOK_OUTPUT_TAIL));
      }
    } catch {
      // Cancelled, or the pipe broke: what was read is kept.
    }
  })();
  return {
    done,
    cancel: () => reader.cancel().catch(() => {}),
    text: () => new TextDecoder().decode(kept),
  };
}

/** Starts and signals hook processes with `Deno.Command` and `Deno.kill`. */
export const denoHookProcesses: HookProcesses = {
  async run(argv, env, timeoutMs): Promise<HookExit> {
    const [program, ...args] = argv;
    // The program is found on the hook's own PATH (`env.PATH` is HOOK_PATH), once: the
    // place checked is the place started (./permissions.ts).
    const { command, missing } = programToRun(program, env.PATH ?? HOOK_PATH);
    refuseIf(missing);
    const child = new Deno.Command(command, {
      args,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = tailOf(child.stdout);
    const err = tailOf(child.stderr);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, timeoutMs);
    try {
      const status = await child.status;
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([out.done, err.done]),
        new Promise((r) => grace = setTimeout(r, DRAIN_AFTER_EXIT_MS)),
      ]);
      clearTimeout(grace);
      await Promise.all([out.cancel(), err.cancel()]);
      return {
        code: status.signal ? null : status.code,
        signal: status.signal,
        timedOut,
        stdout: out.text(),
        stderr: err.text(),
      };
    } finally {
      clearTimeout(timer);
    }
  },
  readPidFile: async (path) => {
    // Read through one open file, so the owner and mode checked are the text's.
    refuseIf(missingPermission({ name: "sys", kind: "uid" }));
    using file = await Deno.open(path, { read: true });
    const info = await file.stat();
    // A PID file is a few digits: more than this is not one, and parsing says so.
    const buf = new Uint8Array(64);
    const n = await file.read(buf);
    const text = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return { text, uid: info.uid, mode: info.mode, selfUid: Deno.uid() };
  },
  kill: (pid, signal) => {
    refuseIf(missingPermission({ name: "run" }));
    Deno.kill(pid, `SIG${signal}`);
  },
};
