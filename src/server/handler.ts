/**
 * The auth service as a plain fetch handler, the shape every runtime's HTTP
 * server and every Worker serves, without exposing the web framework.
 *
 * @module
 */
import { createApp } from "./app.ts";
import type { ServerContext } from "./context.ts";

/** Connection facts the HTTP adapter knows and the app cannot see. */
export interface ConnectionInfo {
  /** Peer IP address, recorded in audit events. */
  remoteAddr?: string;
}

/** A request handler: `(request, connection) → response`. */
export type FetchHandler = (request: Request, connection?: ConnectionInfo) => Promise<Response>;

/**
 * Builds the auth service's request handler over `ctx`.
 *
 * @example Serve the auth service
 * ```ts ignore
 * import { bootstrapCluster, createAuthHandler, MemoryBackend, silentLogger } from "@keybound/keybound";
 *
 * const ctx = await bootstrapCluster(new MemoryBackend(), {
 *   clusterName: "example.com",
 *   log: silentLogger,
 *   version: "0.1.0",
 * });
 * const handle = createAuthHandler(ctx);
 * const res = await handle(new Request("http://127.0.0.1/v1/ping"));
 * console.log((await res.json()).cluster_name); // "example.com"
 * ```
 */
export function createAuthHandler(ctx: ServerContext): FetchHandler {
  const app = createApp(ctx);
  return async (request, connection = {}) => await app.fetch(request, { ...connection });
}
