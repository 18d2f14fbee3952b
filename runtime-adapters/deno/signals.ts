/**
 * tbot's signals on Deno: SIGINT and SIGTERM stop cleanly, SIGHUP renews at
 * once (`systemctl reload tbot` sends it). SIGUSR1 is no renewal signal: it
 * ends the process (./entry/inspector_guard.ts).
 *
 * @module
 */

/** Signals that stop the agent. */
export const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];
/** Signals that trigger an immediate renewal. */
export const RELOAD_SIGNALS: readonly Deno.Signal[] = ["SIGHUP"];

/**
 * Installs the handlers; returns a function that removes them. After the
 * first stop signal the stop handlers are removed, so a second Ctrl-C ends
 * the process at once if a clean stop hangs.
 */
export function installSignalHandlers(handlers: {
  stop(signal: string): void;
  reload(signal: string): void;
}): () => void {
  if (Deno.build.os === "windows") return () => {};
  const installed: [Deno.Signal, () => void][] = [];
  const removeStop = () => {
    for (const [signal, fn] of installed) {
      if (STOP_SIGNALS.includes(signal)) Deno.removeSignalListener(signal, fn);
    }
  };
  for (const signal of STOP_SIGNALS) {
    const fn = () => {
      removeStop();
      handlers.stop(signal);
    };
    Deno.addSignalListener(signal, fn);
    installed.push([signal, fn]);
  }
  for (const signal of RELOAD_SIGNALS) {
    const fn = () => handlers.reload(signal);
    Deno.addSignalListener(signal, fn);
    installed.push([signal, fn]);
  }
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    for (const [signal, fn] of installed) {
      try {
        Deno.removeSignalListener(signal, fn);
      } catch {
        // Already removed by the first stop signal.
      }
    }
  };
}
