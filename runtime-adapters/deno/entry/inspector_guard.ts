/**
 * Refuses SIGUSR1, fail-closed, from the moment this module is evaluated.
 *
 * Since Deno 2.9.2 a process that receives SIGUSR1 opens the V8 inspector on
 * 127.0.0.1:9229 (Node's convention) without authentication: any local user
 * can then run code inside tbot or the auth service and use its keys. Deno
 * has no flag or variable to turn that off. Its own listener is installed
 * about 500 ms after start; a JS listener installed before it runs first, so
 * exiting there ends the process before the inspector binds. One installed
 * later loses the race: the port opens for a moment (measured; see
 * docs/security.md, "No debugger on a signal").
 *
 * So every entry point imports this module first and loads everything else
 * with a dynamic `import()`: static imports are all loaded before any of
 * them is evaluated, which for the auth service took up to 320 ms on a cold
 * cache here. Before the listener exists, SIGUSR1's default action ends the
 * process as well.
 *
 * The process exits with {@linkcode SIGUSR1_EXIT_CODE} (what a shell reports
 * for a process killed by SIGUSR1), so a service manager restarts it.
 *
 * @module
 */

/** Exit code after a refused SIGUSR1: 128 + 10, as if the signal had killed the process. */
export const SIGUSR1_EXIT_CODE = 138;

/** The one line written to stderr before exiting. */
export const SIGUSR1_REFUSAL =
  "refusing SIGUSR1: Deno would open an unauthenticated debugger (V8 inspector) on " +
  "127.0.0.1:9229; exiting so the service manager restarts this process " +
  "(tbot renews on SIGHUP)";

function refuse(): void {
  try {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`${new Date().toISOString()} ERROR ${SIGUSR1_REFUSAL}\n`),
    );
  } finally {
    Deno.exit(SIGUSR1_EXIT_CODE);
  }
}

// Windows has neither SIGUSR1 nor the inspector-on-signal behaviour.
if (Deno.build.os !== "windows") Deno.addSignalListener("SIGUSR1", refuse);
