/**
 * The auth service's diagnostics application, served on its own listener
 * (`--diag-addr`) so a load balancer's health check can use it and nothing
 * here is reachable on the public port: `/livez` (the process answers) and
 * `/readyz` (the backend answers a point read in time and the CAs are
 * loaded) and, given the process's {@linkcode AuthMetrics}, `/metrics`
 * (Prometheus text). While `/readyz` fails, requests on the public port that need
 * storage answer `503 BACKEND_UNAVAILABLE`.
 *
 * @module
 */
import { Hono } from "hono";
import { isKeyboundError } from "../errors.ts";
import type { ServerContext } from "./context.ts";
import { CLUSTER_META } from "./keys.ts";
import type { AuthMetrics } from "./metrics.ts";

/** Longest wait for the backend probe of `/readyz`. */
export const READY_PROBE_TIMEOUT_MS = 2_000;

/** The body of `/readyz`. */
export interface Readiness {
  /** `ready` when every check passed. */
  status: "ready" | "unavailable";
  /** One entry per check: `ok` or `CODE: message`. */
  checks: { backend: string; certificate_authorities: string };
}

async function probeBackend(ctx: ServerContext, timeoutMs: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      ctx.backend.get(CLUSTER_META),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    return "ok";
  } catch (err) {
    return isKeyboundError(err)
      ? `${err.code}: ${err.message}`
      : `BACKEND_UNAVAILABLE: ${err instanceof Error ? err.message : "probe failed"}`;
  } finally {
    clearTimeout(timer);
  }
}

/** Checks readiness now. */
export async function readiness(
  ctx: ServerContext,
  timeoutMs = READY_PROBE_TIMEOUT_MS,
): Promise<Readiness> {
  const backend = await probeBackend(ctx, timeoutMs);
  const cas = ctx.cas.user.tls && ctx.cas.host.tls && ctx.cas.boundKeypair.jwt?.length
    ? "ok"
    : "INTERNAL: certificate authorities not loaded";
  return {
    status: backend === "ok" && cas === "ok" ? "ready" : "unavailable",
    checks: { backend, certificate_authorities: cas },
  };
}

/**
 * The diagnostics application.
 *
 * @example
 * ```ts ignore
 * const diag = createDiagApp(ctx);
 * (await diag.request("/readyz")).status; // 200 or 503
 * ```
 */
export function createDiagApp(ctx: ServerContext, metrics?: AuthMetrics): Hono {
  const app = new Hono();
  app.get("/livez", (c) => c.text("OK"));
  app.get("/readyz", async (c) => {
    const r = await readiness(ctx);
    return c.json(r, r.status === "ready" ? 200 : 503);
  });
  if (metrics) {
    app.get("/metrics", async (c) =>
      c.body(await metrics.render(ctx), 200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
      }));
  }
  return app;
}
