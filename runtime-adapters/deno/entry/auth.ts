/**
 * Entry point of the auth service (`deno task auth`, `bin/keybound-auth`, the compiled `keybound-auth`). It imports
 * nothing statically but the SIGUSR1 guard and ./auth_signals.ts, whose
 * listeners go in before the service loads: a SIGTERM during the start
 * stops it cleanly rather than kill it with its storage open; see
 * ./inspector_guard.ts and ./auth_signals.ts.
 *
 * @module
 */
import { runProgram } from "./run.ts";
import { holdStopSignals } from "./auth_signals.ts";

holdStopSignals();
await runProgram(() => import("../auth_main.ts"));
