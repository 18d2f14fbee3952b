/**
 * Entry point of the auth service (`deno task auth`, `bin/keybound-auth`, the compiled `keybound-auth`). It imports
 * nothing statically but the SIGUSR1 guard; see ./inspector_guard.ts.
 *
 * @module
 */
import { runProgram } from "./run.ts";

await runProgram(() => import("../auth_main.ts"));
