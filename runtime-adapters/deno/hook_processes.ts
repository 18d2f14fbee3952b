/**
 * The Deno side of reload hooks: starts a hook's program with exactly the
 * environment the policy built, kills it at the timeout, reads PID files and
 * sends signals. What runs, with what environment, and how results are
 * reported is decided in `src/agent/hooks/`.
 *
 * @module
 */
import type { HookExit, HookProcesses } from "../../src/agent/hooks/mod.ts";

/** Starts and signals hook processes with `Deno.Command` and `Deno.kill`. */
export const denoHookProcesses: HookProcesses = {
  async run(argv, env, timeoutMs): Promise<HookExit> {
    const [program, ...args] = argv;
    // No pipes: a hook's grandchild that keeps a pipe open would otherwise hold tbot up.
    const child = new Deno.Command(program, {
      args,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, timeoutMs);
    try {
      const status = await child.status;
      return { code: status.signal ? null : status.code, signal: status.signal, timedOut };
    } finally {
      clearTimeout(timer);
    }
  },
  readTextFile: (path) => Deno.readTextFile(path),
  kill: (pid, signal) => Deno.kill(pid, `SIG${signal}`),
};
