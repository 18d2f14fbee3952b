/**
 * Entry point of `tbot` (`deno task tbot`, `bin/tbot`, the compiled `tbot`). It imports
 * nothing statically but the SIGUSR1 guard; see ./inspector_guard.ts.
 *
 * @module
 */
import { runProgram } from "./run.ts";

await runProgram(() => import("../tbot_main.ts"));
