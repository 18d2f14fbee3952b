/**
 * Entry point of `tbot` (`deno task tbot`, `bin/tbot`, the compiled `tbot`). It imports
 * nothing statically but the SIGUSR1 guard; see ./inspector_guard.ts.
 *
 * @module
 */
import { runProgram } from "./run.ts";
import type { NodeProcess } from "../permissions.ts";

await runProgram(async () => {
  // Before any npm package runs (here they run as npm packages, whose code reads
  // Node's `process.env`): under a narrowed --allow-env, the variables they read
  // would prompt a terminal (../permissions.ts).
  const { guardNodeEnv } = await import("../permissions.ts");
  guardNodeEnv((globalThis as unknown as { process: NodeProcess }).process);
  return await import("../tbot_main.ts");
});
