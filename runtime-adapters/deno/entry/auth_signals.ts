/**
 * SIGINT and SIGTERM for the auth service, caught from the moment its entry
 * point calls {@linkcode holdStopSignals} (before the rest of the service is
 * loaded) and handed to whoever takes them with {@linkcode onStopSignal}.
 * Imports only ../signals.ts, which imports nothing: the entry point
 * evaluates it before loading the service.
 *
 * Until session 13 the listeners went in only once the service listened, so
 * a SIGTERM during the start (a service manager stopping a unit that was
 * starting, a test stopping a start at once) took the signal's default
 * action: the process was killed (exit 143 in a shell, a failure to systemd)
 * with its Deno KV open, which left `keybound.kv-wal` and `-shm` behind, and
 * the socket's lock file in its directory. Now a stop asked during the start
 * is kept, the start ends at its next step, storage is closed, and the
 * process exits 0 (docs/operations.md). Before the listeners exist (the
 * runtime's own start, milliseconds, nothing opened yet) and after the first
 * signal (a second one ends a stop that hangs, at once) the default action
 * applies.
 *
 * @module
 */
import { STOP_SIGNALS } from "../signals.ts";

/** The listeners installed, the first signal not yet handed on, and whom to hand it to. */
interface Held {
  pending?: Deno.Signal;
  stop?: (signal: Deno.Signal) => void;
  remove(): void;
}

let held: Held | undefined;

/**
 * Installs the SIGINT and SIGTERM listeners if not yet installed: the first
 * signal from now on is kept for {@linkcode onStopSignal} instead of ending
 * the process (a second one ends it). The auth entry point calls it first; a
 * process that exits by `Deno.exit` need not remove them.
 */
export function holdStopSignals(): void {
  if (held !== undefined) return;
  const listener = (signal: Deno.Signal) => {
    if (held === undefined) return;
    // The first signal only: the listeners go, so a second one takes the
    // default action and ends at once a stop that waits (on the Deno KV
    // file's write lock, which another process may hold without limit, or a
    // PostgreSQL connect), as tbot's does (review-front s13 M1: every later
    // signal was swallowed, and only SIGKILL ended such a start).
    held.remove();
    const stop = held.stop;
    if (stop === undefined) {
      held.pending = signal;
      return;
    }
    held.stop = () => {};
    stop(signal);
  };
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => listener(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  let removed = false;
  held = {
    remove() {
      if (removed) return;
      removed = true;
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    },
  };
}

/**
 * Calls `stop` once, on the first SIGINT or SIGTERM since
 * {@linkcode holdStopSignals} (at once, if one came already); a second
 * signal takes its default action. Returns a function that removes the
 * listeners (they would otherwise keep the process alive), after which a
 * signal takes its default action too.
 */
export function onStopSignal(stop: (signal: Deno.Signal) => void): () => void {
  holdStopSignals();
  const current = held!;
  const pending = current.pending;
  if (pending !== undefined) {
    current.pending = undefined;
    current.stop = () => {};
    stop(pending);
  } else {
    current.stop = stop;
  }
  return () => {
    if (held !== current) return;
    held = undefined;
    current.remove();
  };
}
