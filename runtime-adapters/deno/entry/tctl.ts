/**
 * Entry point of `tctl` (`deno task tctl`, `bin/tctl`, the compiled `tctl`). It imports
 * nothing statically but the SIGUSR1 guard; see ./inspector_guard.ts.
 *
 * @module
 */
import { runProgram } from "./run.ts";

await runProgram(() => import("../tctl_main.ts"));
