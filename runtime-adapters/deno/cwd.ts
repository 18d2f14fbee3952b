/**
 * `deno task` runs its command in the directory of `deno.json`, not where the
 * user typed it, and records the user's directory in `INIT_CWD`. The entry
 * points move back there so relative paths (`tctl create bot.yaml`,
 * `-c tbot.yaml`) mean what the user meant.
 *
 * `INIT_CWD` is inherited by child processes, so it is honoured only when the
 * process starts in the project root, which is where `deno task` puts it.
 *
 * @module
 */
import { readEnv } from "./permissions.ts";

const PROJECT_ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Changes to the directory `deno task` was invoked from, if any. */
export function useInvocationDirectory(): void {
  // Not readable (a narrowed --allow-env, or none): not run through the task, nothing
  // to undo. Asked first, so a terminal is not prompted (./permissions.ts).
  const dir = readEnv("INIT_CWD");
  if (!dir || Deno.cwd().replace(/\/$/, "") !== PROJECT_ROOT) return;
  Deno.chdir(dir);
}
