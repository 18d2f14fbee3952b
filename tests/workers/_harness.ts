/**
 * Starts bundled Workers in real workerd through miniflare (npm), for tests.
 *
 * @module
 */
import { Miniflare } from "miniflare";
import { bundleWorker, type WorkerBundle } from "../../runtime-adapters/workers/build.ts";

/** A compatibility date the pinned workerd supports; below 2026-08-04 Node compat stays off. */
export const COMPATIBILITY_DATE = "2026-07-01";

/** Options for {@linkcode startWorker}. */
export interface StartWorkerOptions {
  /** Durable Object bindings: binding name → exported class name (SQLite-backed). */
  durableObjects?: Record<string, string>;
  /** Plain-text bindings (vars and secrets). */
  bindings?: Record<string, string>;
  /** Directory persisting Durable Object storage across Miniflare instances. */
  persistDir?: string;
  /**
   * Service bindings to plain HTTP servers: binding name → `host:port`.
   * workerd reaches them with its own HTTP client, without the JavaScript
   * Worker miniflare puts in front of every global `fetch` (its "outbound
   * interceptor"), as a deployed Worker's bindings and subrequests are.
   */
  externalServices?: Record<string, string>;
  /** Opens workerd's V8 inspector on this loopback port (profiling). */
  inspectorPort?: number;
}

/** A running Worker; disposing it stops workerd. */
export interface RunningWorker extends AsyncDisposable {
  /** The Miniflare instance. */
  mf: Miniflare;
  /** Sends a request to the Worker's fetch handler. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops workerd. */
  stop(): Promise<void>;
}

/** Bundles `entry` (once per call); remove the bundle when done. */
export function bundle(entry: URL): Promise<WorkerBundle> {
  return bundleWorker(entry);
}

/** Starts the bundled script at `scriptPath` in workerd. */
export async function startWorker(
  scriptPath: string,
  options: StartWorkerOptions = {},
): Promise<RunningWorker> {
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    // Module names are relative to this root; the bundle lives outside the checkout.
    modulesRoot: scriptPath.slice(0, scriptPath.lastIndexOf("/")),
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: Object.fromEntries(
      Object.entries(options.durableObjects ?? {}).map((
        [binding, className],
      ) => [binding, { className, useSQLite: true }]),
    ),
    bindings: options.bindings ?? {},
    serviceBindings: Object.fromEntries(
      Object.entries(options.externalServices ?? {}).map((
        [binding, address],
      ) => [binding, { external: { address, http: {} } }]),
    ),
    ...(options.persistDir ? { durableObjectsPersist: options.persistDir } : {}),
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
  });
  await mf.ready;
  const stop = () => mf.dispose();
  return {
    mf,
    // miniflare's fetch types come from undici; the web Response is what arrives.
    fetch: (path, init) =>
      mf.dispatchFetch(`http://worker.test${path}`, init as never) as unknown as Promise<Response>,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
