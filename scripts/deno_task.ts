/**
 * A `deno.json` task's command line as a process spawn needs it: the
 * variables it sets (`NAME=value` words before `deno`) and the arguments
 * after `deno`, with relative `.ts` paths made absolute. The demo and the
 * benchmarks start tbot, tctl and the auth service exactly as their tasks do.
 *
 * @module
 */

/** A task's command line split for `Deno.Command`. */
export interface DenoTaskCommand {
  /** Variables the task sets before `deno`. */
  env: Record<string, string>;
  /** The arguments after `deno`. */
  args: string[];
}

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * Reads task `name` from the repository's `deno.json`.
 *
 * @example
 * ```ts ignore
 * const { env, args } = denoTask("tbot");
 * await new Deno.Command(Deno.execPath(), { args: [...args, "version"], env }).output();
 * ```
 */
export function denoTask(name: string): DenoTaskCommand {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks;
  const words: string[] = String(tasks[name]).trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? "")) {
    const [k, ...v] = words.shift()!.split("=");
    env[k] = v.join("=");
  }
  if (words.shift() !== "deno") throw new Error(`task ${name} does not run deno`);
  return {
    env,
    args: words.map((a) => a.endsWith(".ts") && !a.startsWith("/") ? `${ROOT}${a}` : a),
  };
}
