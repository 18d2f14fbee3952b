/**
 * Console API routes (docs/protocol.md §11): minting enrollment codes,
 * enrolling a browser, listing and revoking browsers, and `whoami`. The
 * console's other calls are the admin API's (§5).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { AccessDeniedError } from "../../errors.ts";
import {
  CreateEnrollmentRequest,
  EnrollRequest,
  WEB_BROWSERS_PATH,
  WEB_ENROLL_PATH,
  WEB_ENROLLMENTS_PATH,
  WEB_WHOAMI_PATH,
  type WhoamiResponse,
} from "../../protocol/web.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import { requireAdmin } from "../request_auth.ts";
import { listBrowsers, revokeBrowser } from "./browsers.ts";
import { enrollBrowser, mintEnrollment } from "./enrollment.ts";

function actorOf(c: Context<AppEnv>): { user: string; remoteAddr?: string } {
  const remoteAddr = c.env?.remoteAddr;
  return { user: c.get("identity").username, ...(remoteAddr ? { remoteAddr } : {}) };
}

/** Builds the console API; mounted at the root by the app (paths carry `/v1/web`). */
export function webRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const admin = requireAdmin(ctx);

  r.post(WEB_ENROLLMENTS_PATH, admin, async (c) => {
    // A browser must not mint codes: a stolen session could otherwise outlive its revocation.
    if (c.get("identity").browserId !== undefined) {
      throw new AccessDeniedError("enrollment codes are minted with the admin identity (tctl)");
    }
    const body = await readJson(c, CreateEnrollmentRequest);
    return c.json(
      await mintEnrollment(ctx, {
        ttlSeconds: body.ttl_seconds,
        sessionTtlSeconds: body.session_ttl_seconds,
        ...(body.label === undefined ? {} : { label: body.label }),
        actor: actorOf(c),
      }),
    );
  });

  // Unauthenticated: bounded by the app's per-source rate limit and by needing a minted code.
  r.post(WEB_ENROLL_PATH, async (c) => {
    const body = await readJson(c, EnrollRequest);
    return c.json(await enrollBrowser(ctx, body, c.env?.remoteAddr));
  });

  r.get(WEB_BROWSERS_PATH, admin, async (c) => c.json({ items: await listBrowsers(ctx) }));

  r.delete(`${WEB_BROWSERS_PATH}/:id`, admin, async (c) => {
    await revokeBrowser(ctx, c.req.param("id"), actorOf(c));
    return c.json({});
  });

  r.get(WEB_WHOAMI_PATH, admin, (c) => {
    const id = c.get("identity");
    return c.json(
      {
        username: id.username,
        roles: id.roles,
        ...(id.browserId === undefined ? {} : { browser_id: id.browserId }),
        expires: id.cert.notAfter.toISOString(),
      } satisfies WhoamiResponse,
    );
  });

  return r;
}
