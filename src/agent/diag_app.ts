/**
 * The diagnostics HTTP app served on `diag_addr` (Teleport's diagnostics
 * service): `/livez`, `/readyz`, `/readyz/{service}` and `/metrics`.
 *
 * @module
 */
import { Hono } from "hono";
import type { TbotMetrics } from "./metrics.ts";
import type { ReadinessRegistry } from "./readiness.ts";

/** Prometheus text exposition content type. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function prettyJson(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Builds the diagnostics app. */
export function createDiagApp(readiness: ReadinessRegistry, metrics: TbotMetrics): Hono {
  const app = new Hono();
  app.get("/livez", (c) => c.text("OK"));
  app.get("/readyz", () => {
    const overall = readiness.overall();
    return prettyJson(overall, overall.status === "healthy" ? 200 : 503);
  });
  app.get("/readyz/:service", (c) => {
    const name = c.req.param("service");
    const s = readiness.service(name);
    if (!s) return prettyJson({ error: `Service named "${name}" not found.` }, 404);
    return prettyJson(s, s.status === "healthy" ? 200 : 503);
  });
  app.get(
    "/metrics",
    () => new Response(metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } }),
  );
  app.notFound((c) =>
    c.text(
      "404 page not found. The diagnostics endpoints are /livez, /readyz, /readyz/{service} " +
        "and /metrics; see docs/tbot.md.\n",
      404,
    )
  );
  return app;
}
