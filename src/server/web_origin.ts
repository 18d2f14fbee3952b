/**
 * Which browser origins may call the auth service (`--web-origin`). Browsers
 * mark cross-origin calls with an `Origin` header; a call from an origin the
 * admin listed gets CORS headers (GET and POST, the `authorization` and
 * `content-type` request headers, no credentials), a preflight from it is
 * answered, and a call from any other origin is refused with
 * `403 ORIGIN_NOT_ALLOWED` before any route runs: CORS alone would only hide
 * the response from the page, not stop a simple request from running.
 * Same-origin calls and clients that send no `Origin` (tbot, tctl) pass
 * untouched.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { BadParameterError, OriginNotAllowedError } from "../errors.ts";
import type { AppEnv } from "./hono_env.ts";

/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = 600;

/**
 * Parses one `--web-origin` value: `http://` or `https://`, a host, an
 * optional port, nothing else (no path, query, user info, wildcard or
 * `null`). Returns the origin as browsers send it.
 *
 * @example
 * ```ts
 * parseWebOrigin("https://Kiosk.example.com:8443", "--web-origin"); // "https://kiosk.example.com:8443"
 * ```
 * @throws BadParameterError naming `what` when the value is not such an origin
 */
export function parseWebOrigin(value: string, what: string): string {
  const bad = (why: string) =>
    new BadParameterError(
      `${what} ${
        JSON.stringify(value)
      } is not a web origin (${why}); expected SCHEME://HOST[:PORT]`,
    );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad("not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw bad("scheme must be http or https");
  }
  if (url.username || url.password) throw bad("user info is not allowed");
  if (url.hostname.includes("*")) throw bad("wildcards are not allowed");
  // The URL parser adds "/" to a bare origin; anything more was in the value.
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || /[?#]/.test(value)) {
    throw bad("no path, query or fragment");
  }
  return url.origin;
}

function sameOrigin(request: Request, origin: string): boolean {
  // Browsers set Sec-Fetch-Site themselves; script cannot forge it.
  return request.headers.get("sec-fetch-site") === "same-origin" ||
    new URL(request.url).origin === origin;
}

/**
 * Middleware enforcing the web-origin list (origins as returned by
 * {@linkcode parseWebOrigin}); an empty list refuses every cross-origin call.
 */
export function webOriginPolicy(origins: readonly string[]): MiddlewareHandler<AppEnv> {
  const allowed = new Set(origins);
  const corsHeaders = cors({
    origin: (origin) => allowed.has(origin) ? origin : null,
    allowMethods: ["GET", "POST"],
    allowHeaders: ["authorization", "content-type"],
    maxAge: PREFLIGHT_MAX_AGE,
  });
  return (c, next) => {
    const origin = c.req.header("origin");
    if (origin === undefined || sameOrigin(c.req.raw, origin)) return next();
    if (!allowed.has(origin)) {
      throw new OriginNotAllowedError(
        `origin ${JSON.stringify(origin.slice(0, 200))} is not allowed to call this service`,
      );
    }
    return corsHeaders(c, next);
  };
}
