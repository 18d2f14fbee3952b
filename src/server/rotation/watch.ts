/**
 * The CA watcher every auth instance runs: on a jittered timer it re-reads
 * the CA revision (reloading the CAs when another instance changed them),
 * applies automatic phase changes that are due (one instance wins each
 * compare-and-swap), and tells the adapter when the CAs changed so it can
 * swap its TLS certificate and rewrite the admin identity; `onTick` runs in
 * the same sequence, so a certificate renewal never races a rotation's swap.
 *
 * @module
 */
import type { CaSet, ServerContext } from "../context.ts";
import { CA_MAX_STALENESS_MS, refreshCas } from "./cache.ts";
import { advanceDueRotations } from "./rotate.ts";

/** Options of {@linkcode startCaWatcher}. */
export interface CaWatcherOptions {
  /** Period, milliseconds (a random 0-25 % is added each time). */
  intervalMs?: number;
  /** Called (awaited) after the CAs changed, with the snapshot before. */
  onChange?: (previous: CaSet) => Promise<void>;
  /** Called (awaited) at the end of every tick, after `onChange` (time-driven work). */
  onTick?: () => Promise<void>;
}

/** A running watcher. */
export interface CaWatcher {
  /** Stops it; resolves when a tick in flight has finished. */
  stop(): Promise<void>;
  /** Runs one tick now (tests, and right after start). */
  tick(): Promise<void>;
}

/**
 * Starts the watcher. Errors of a tick are logged and the next tick runs
 * as usual (a database hiccup must not stop rotation).
 *
 * @example Watch the CAs of an auth instance
 * ```ts ignore
 * import { startCaWatcher, type ServerContext } from "@keybound/keybound";
 *
 * declare const ctx: ServerContext;
 * const watcher = startCaWatcher(ctx, { onChange: async () => console.log("CAs changed") });
 * await watcher.stop();
 * ```
 */
export function startCaWatcher(ctx: ServerContext, options: CaWatcherOptions = {}): CaWatcher {
  const interval = options.intervalMs ?? CA_MAX_STALENESS_MS;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let seen = ctx.cas;

  const once = async () => {
    try {
      await refreshCas(ctx, 0);
      await advanceDueRotations(ctx);
      if (ctx.cas !== seen) {
        const current = ctx.cas;
        await options.onChange?.(seen);
        // Only once handled: a failed certificate swap is tried again at the next tick.
        seen = current;
      }
      await options.onTick?.();
    } catch (err) {
      ctx.log.warn("CA watcher tick failed", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  };
  const tick = () => {
    running = running.then(once);
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(async () => {
      await tick();
      schedule();
    }, interval * (1 + Math.random() / 4));
  };
  schedule();
  return {
    tick,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

const lastRequestTick = new WeakMap<ServerContext, number>();

/**
 * The watcher's work for runtimes without a long-lived timer (a Worker
 * isolate): called on each request, it re-checks the CAs and applies due
 * automatic phases at most once per {@linkcode CA_MAX_STALENESS_MS}; other
 * requests go on with the current snapshot. Errors are logged, not thrown:
 * the request itself meets a failing backend on its own.
 */
export async function caTickOnRequest(ctx: ServerContext): Promise<void> {
  const now = performance.now();
  if (now - (lastRequestTick.get(ctx) ?? -Infinity) < CA_MAX_STALENESS_MS) return;
  lastRequestTick.set(ctx, now);
  try {
    await refreshCas(ctx, 0);
    await advanceDueRotations(ctx);
  } catch (err) {
    ctx.log.warn("CA check failed", { error: err instanceof Error ? err.message : String(err) });
  }
}
