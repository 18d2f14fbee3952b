/**
 * Admin routes of CA rotation (docs/protocol.md §10): start or move a
 * rotation, and read a CA's trusted keys in every format (`tctl auth
 * rotate`, `tctl auth export`). Both need an `@admin` signed request.
 *
 * @module
 */
import { Hono } from "hono";
import { RotateRequest } from "../../protocol/ca_rotation.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import { requireAdmin } from "../request_auth.ts";
import { caOf, refreshCas } from "../rotation/cache.ts";
import { parseCaType, rotateCa } from "../rotation/rotate.ts";
import { caExport } from "../rotation/status.ts";

/** Builds the router; mounted under `/v1` by the app. */
export function caRotationRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const admin = requireAdmin(ctx);

  r.post("/cas/:type/rotate", admin, async (c) => {
    const type = parseCaType(c.req.param("type"));
    const body = await readJson(c, RotateRequest);
    const remoteAddr = c.env?.remoteAddr;
    const status = await rotateCa(ctx, type, body, {
      user: c.get("identity").username,
      ...(remoteAddr ? { remoteAddr } : {}),
    });
    return c.json(status);
  });

  r.get("/cas/:type", admin, async (c) => {
    const type = parseCaType(c.req.param("type"));
    await refreshCas(ctx, 0);
    return c.json(await caExport(caOf(ctx, type)));
  });

  return r;
}
