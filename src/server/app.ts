/**
 * The auth service's HTTP application: error mapping, body limit and the
 * `/v1` routers. Runtime-agnostic; adapters call `app.fetch(request, {remoteAddr})`.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, KeyboundError } from "../errors.ts";
import type { ServerContext } from "./context.ts";
import type { AppEnv } from "./hono_env.ts";
import { MAX_BODY_BYTES } from "../protocol/body_limit.ts";
import { joinRoutes } from "./join/routes.ts";
import { adminRoutes } from "./routes/admin.ts";
import { botRoutes } from "./routes/bot.ts";
import { caRotationRoutes } from "./routes/ca_rotation.ts";
import { discoveryRoutes } from "./routes/discovery.ts";
import { outputCertRoutes } from "./routes/output_certs.ts";
import { workloadRoutes } from "./routes/workload.ts";
import { webOriginPolicy } from "./web_origin.ts";
import { consoleAssetRoutes, type ConsoleAssets } from "./web/assets.ts";
import { webRoutes } from "./web/routes.ts";
import { rateLimiter } from "./rate_limit/middleware.ts";
import { DEFAULT_RATE_LIMIT, type RateLimitConfig } from "./rate_limit/token_bucket.ts";

const HTTP_EXCEPTION_CODES: Record<number, ErrorCode> = {
  400: "BAD_REQUEST",
  401: "UNAUTHENTICATED",
  403: "ACCESS_DENIED",
  404: "NOT_FOUND",
  413: "PAYLOAD_TOO_LARGE",
  429: "RATE_LIMITED",
};

function errorResponse(c: Context<AppEnv>, err: KeyboundError): Response {
  return c.json(err.toJSON(), err.status as ContentfulStatusCode);
}

/**
 * Maps anything thrown by a handler to the JSON error shape. Keybound errors
 * carry client-safe messages; everything else is logged here and answered
 * with a generic 500 so no internals reach the client.
 */
function toKeyboundError(ctx: ServerContext, err: unknown, c: Context<AppEnv>): KeyboundError {
  const where = { method: c.req.method, path: new URL(c.req.url).pathname };
  if (err instanceof KeyboundError) {
    if (err.status >= 500) {
      ctx.log.error("request failed", { ...where, code: err.code, error: err, cause: err.cause });
    }
    return err;
  }
  if (err instanceof HTTPException && err.status in HTTP_EXCEPTION_CODES) {
    return new KeyboundError(HTTP_EXCEPTION_CODES[err.status], err.message || "bad request");
  }
  ctx.log.error("unhandled error", {
    ...where,
    error: err instanceof Error ? err.stack ?? err.message : String(err),
  });
  return new KeyboundError("INTERNAL", "internal error");
}

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /**
   * Browser origins allowed to call the service cross-origin (see
   * ./web_origin.ts); none by default.
   */
  webOrigins?: readonly string[];
  /**
   * Per-source rate limit of unauthenticated requests (docs/security.md);
   * default {@linkcode DEFAULT_RATE_LIMIT}.
   */
  rateLimit?: Partial<RateLimitConfig>;
  /** The fleet console's files, served under `/web/` (see ./web/assets.ts); none by default. */
  consoleAssets?: ConsoleAssets;
}

/** Builds the auth service application. */
export function createApp(ctx: ServerContext, options: AppOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError((err, c) => errorResponse(c, toKeyboundError(ctx, err, c)));
  app.notFound((c) =>
    errorResponse(
      c,
      new KeyboundError("NOT_FOUND", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
    )
  );
  app.use("*", webOriginPolicy(options.webOrigins ?? []));
  // Before anything that parses, stores or logs (after CORS, so a browser can read a 429).
  app.use("*", rateLimiter({ ...DEFAULT_RATE_LIMIT, ...options.rateLimit }));
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        errorResponse(
          c,
          new KeyboundError(
            "PAYLOAD_TOO_LARGE",
            `request body is larger than ${MAX_BODY_BYTES} bytes`,
          ),
        ),
    }),
  );
  app.route("/v1", discoveryRoutes(ctx));
  app.route("/v1", caRotationRoutes(ctx));
  app.route("/v1", joinRoutes(ctx));
  app.route("/v1", adminRoutes(ctx));
  app.route("/v1", botRoutes(ctx));
  app.route("/", workloadRoutes(ctx));
  app.route("/", outputCertRoutes(ctx));
  app.route("/", webRoutes(ctx));
  if (options.consoleAssets) app.route("/", consoleAssetRoutes(options.consoleAssets));
  return app;
}
