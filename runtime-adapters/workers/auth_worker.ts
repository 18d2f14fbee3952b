/**
 * The Keybound auth service as a Cloudflare Worker: the same hono
 * application as on Deno, with the cluster's state in one
 * {@linkcode ClusterState} Durable Object. TLS is Cloudflare's.
 *
 * Bindings: `CLUSTER_STATE` (Durable Object namespace of `ClusterState`,
 * SQLite-backed), `CLUSTER_NAME` (var), optional secret
 * `KEYBOUND_ADMIN_BOOTSTRAP_TOKEN` (see ./admin_bootstrap.ts), optional var
 * `LOG_FORMAT` (`text` or `json`).
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { KeyboundError } from "../../src/errors.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { createApp } from "../../src/server/app.ts";
import { caTickOnRequest } from "../../src/server/rotation/watch.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { createLogger } from "../../src/util/log.ts";
import { ADMIN_BOOTSTRAP_PATH, handleAdminBootstrap } from "./admin_bootstrap.ts";
import type { ClusterStateRpc } from "./cluster_state_do.ts";
import { DoBackend } from "./do_backend.ts";
import type { DurableObjectNamespace } from "./types.ts";

export { ClusterState } from "./cluster_state_do.ts";

/** The auth Worker's bindings. */
export interface AuthWorkerEnv {
  /** The ClusterState namespace. */
  CLUSTER_STATE: DurableObjectNamespace<ClusterStateRpc>;
  /** The cluster name (`iss`/`aud` of challenges; fixed once the cluster exists). */
  CLUSTER_NAME: string;
  /** One-time admin bootstrap token (a Worker secret). */
  KEYBOUND_ADMIN_BOOTSTRAP_TOKEN?: string;
  /** Log line format. */
  LOG_FORMAT?: string;
}

interface Started {
  ctx: ServerContext;
  app: ReturnType<typeof createApp>;
}

// One bootstrap per isolate: CAs are loaded (or created) on the first request
// and reused; a failed start is retried on the next request.
let startup: Promise<Started> | undefined;

function start(env: AuthWorkerEnv): Promise<Started> {
  startup ??= (async () => {
    const log = createLogger({
      component: "auth",
      format: env.LOG_FORMAT === "json" ? "json" : "text",
      write: (line) => console.log(line),
    });
    const ctx = await bootstrapCluster(DoBackend.fromNamespace(env.CLUSTER_STATE), {
      clusterName: env.CLUSTER_NAME,
      log,
      version: denoJson.version,
    });
    return { ctx, app: createApp(ctx) };
  })().catch((err) => {
    startup = undefined;
    throw err;
  });
  return startup;
}

export default {
  /** Serves the auth service API (and the admin bootstrap route). */
  async fetch(request: Request, env: AuthWorkerEnv): Promise<Response> {
    let ready: Started;
    try {
      ready = await start(env);
    } catch (err) {
      // Keybound errors carry client-safe messages (a bad CLUSTER_NAME, say); others stay in the log.
      console.error("auth service failed to start:", (err as Error)?.message ?? String(err));
      const e = err instanceof KeyboundError
        ? err
        : new KeyboundError("INTERNAL", "the auth service failed to start");
      return Response.json(e.toJSON(), { status: e.status });
    }
    const { ctx, app } = ready;
    if (new URL(request.url).pathname === ADMIN_BOOTSTRAP_PATH) {
      return handleAdminBootstrap(request, ctx, env.KEYBOUND_ADMIN_BOOTSTRAP_TOKEN);
    }
    // Isolates have no timer of their own: requests keep the CAs current and move automatic
    // rotations along (src/server/rotation/watch.ts), at most once a second per isolate.
    await caTickOnRequest(ctx);
    return app.fetch(request, { remoteAddr: request.headers.get("cf-connecting-ip") ?? undefined });
  },
};
