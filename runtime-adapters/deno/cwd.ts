/**
 * `deno task` runs its command in the directory of `deno.json`, not where the
 * user typed it. It records that directory in `INIT_CWD`; the entry points
 * move back there so relative paths (`tctl create bot.yaml`, `-c tbot.yaml`)
 * mean what the user meant.
 *
 * @module
 */

/** Changes to the directory `deno task` was invoked from, if any. */
export function useInvocationDirectory(): void {
  let dir: string | undefined;
  try {
    dir = Deno.env.get("INIT_CWD");
  } catch {
    return; // no --allow-env: not run through the task, nothing to undo
  }
  if (dir) Deno.chdir(dir);
}
