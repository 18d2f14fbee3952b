/**
 * The diagnostics HTTP app served on `diag_addr` (Teleport's diagnostics
 * service): `/livez`, `/readyz`, `/readyz/{service}` and `/metrics`.
 *
 * Four fixed GET routes, matched by hand rather than with hono (the auth
 * service's router), the same answers: hono cost a renewing daemon ~0.5 MB
 * of resident memory for them, an idle process serving them 1.3 MB
 * (docs/benchmarks.md, "Session 8: tbot").
 *
 * @module
 */
import type { TbotMetrics } from "./metrics.ts";
import type { ReadinessRegistry } from "./readiness.ts";

/** Prometheus text exposition content type. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The diagnostics app: a request handler. */
export interface DiagApp {
  /** Answers one request. */
  fetch(req: Request): Response;
}

const NOT_FOUND = "404 page not found. The diagnostics endpoints are /livez, /readyz, " +
  "/readyz/{service} and /metrics; see docs/tbot.md.\n";

function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=UTF-8" } });
}

function prettyJson(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** A path segment decoded; as it was when it is not valid percent-encoding. */
function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The request's path as sent, without its query: not `new URL(url).pathname`,
 * which resolves dot segments (`/readyz/../livez` would answer as `/livez`).
 * Each route is one exact path, as it was under hono.
 */
function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

/**
 * `path` with its percent-encoded unreserved characters (letters, digits,
 * `-._~`) decoded, as RFC 3986 §6.2.2.2 normalises them: `/%6Civez` is
 * `/livez`, as under hono (which decoded with `decodeURI`). Reserved ones stay
 * encoded (`%2F` is not a separator), and the dot segments this can spell
 * (`/readyz/%2E%2E/livez`) are not resolved, as none is.
 */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : escape;
  });
}

/** Builds the diagnostics app. */
export function createDiagApp(readiness: ReadinessRegistry, metrics: TbotMetrics): DiagApp {
  const route = (path: string): Response => {
    if (path === "/livez") return text("OK");
    if (path === "/readyz") {
      const overall = readiness.overall();
      return prettyJson(overall, overall.status === "healthy" ? 200 : 503);
    }
    if (path === "/metrics") {
      return new Response(metrics.render(), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    }
    const one = /^\/readyz\/([^/]+)$/.exec(path);
    if (one) {
      const name = decodeSegment(one[1]);
      const s = readiness.service(name);
      if (!s) return prettyJson({ error: `Service named "${name}" not found.` }, 404);
      return prettyJson(s, s.status === "healthy" ? 200 : 503);
    }
    return text(NOT_FOUND, 404);
  };
  return {
    fetch: (req) =>
      req.method === "GET" || req.method === "HEAD"
        ? route(decodeUnreserved(rawPath(req.url)))
        : text(NOT_FOUND, 404),
  };
}
