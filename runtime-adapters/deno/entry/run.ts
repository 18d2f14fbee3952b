/**
 * What every Deno entry point does: refuse SIGUSR1 first (the static import
 * of `./inspector_guard.ts` is evaluated before this module's body), then
 * load the program, move to the directory `deno task` was invoked from, run
 * it and exit with its code.
 *
 * @module
 */
import "./inspector_guard.ts";
import { useInvocationDirectory } from "../cwd.ts";

/** A program's module: its `main` returns the process exit code. */
export interface ProgramModule {
  /** Runs the program with the command-line arguments. */
  main(args: string[]): Promise<number>;
}

/**
 * Loads the program with `load` (a dynamic `import()`, so none of its
 * modules is fetched before SIGUSR1 is refused), runs it and exits.
 *
 * @example
 * ```ts ignore
 * await runProgram(() => import("../tctl_main.ts"));
 * ```
 */
export async function runProgram(load: () => Promise<ProgramModule>): Promise<never> {
  const program = await load();
  useInvocationDirectory();
  Deno.exit(await program.main(Deno.args));
}
