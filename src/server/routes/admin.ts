/**
 * Routes of the admin API (docs/protocol.md §5): resources, token rotation
 * and the audit log. Every route requires a signed request by an `@admin`
 * identity. (`GET /v1/status` lives with the discovery routes.)
 *
 * @module
 */
import { type Context, Hono } from "hono";
import * as z from "zod";
import { BadParameterError, KeyboundError, NotFoundError } from "../../errors.ts";
import { ALL_KINDS, type Kind } from "../../resources/schemas.ts";
import { isKind, parseResource } from "../../resources/validate.ts";
import type { CreatableResource } from "../../resources/validate.ts";
import { AUDIT_EVENT_TYPES, isAuditEventType, listAudit, MAX_AUDIT_PAGE } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import { MAX_PUT_RESOURCES } from "../../protocol/admin.ts";
import { requireAdmin } from "../request_auth.ts";
import {
  type Actor,
  DEFAULT_RESOURCE_PAGE,
  deleteResource,
  getResource,
  listResources,
  MAX_RESOURCE_PAGE,
  putResource,
  putResources,
  requestTokenRotation,
  withRevision,
} from "../resources/mod.ts";

/** Body of `PUT /v1/resources/{kind}/{name}`. */
const PutBody = z.strictObject({
  resource: z.unknown(),
  mode: z.enum(["create", "upsert"]).default("create"),
});

/** Body of `POST /v1/resources`: resources written in one compare-and-swap. */
const PutManyBody = z.strictObject({
  resources: z.array(z.unknown()).min(1).max(MAX_PUT_RESOURCES),
  mode: z.enum(["create", "upsert"]).default("create"),
});

function kindParam(c: Context<AppEnv>): Kind {
  const kind = c.req.param("kind") ?? "bot_instance";
  if (!isKind(kind)) {
    throw new KeyboundError(
      "BAD_REQUEST",
      `unknown resource kind "${kind}" (kinds: ${ALL_KINDS.join(", ")})`,
    );
  }
  return kind;
}

/** The resource name of a route: `{name}`, or `{bot}/{id}` for bot instances. */
function nameParam(c: Context<AppEnv>): string {
  const bot = c.req.param("bot");
  return bot === undefined ? c.req.param("name") ?? "" : `${bot}/${c.req.param("id")}`;
}

/** The `limit` query parameter: `fallback` when absent, else an integer from 1 to `max`. */
function limitQuery(c: Context<AppEnv>, fallback: number, max: number): number {
  const text = c.req.query("limit");
  if (text === undefined) return fallback;
  const limit = Number(text);
  if (!/^[0-9]+$/.test(text) || limit < 1 || limit > max) {
    throw new BadParameterError(`limit: must be an integer from 1 to ${max}`, {
      details: { path: "limit" },
    });
  }
  return limit;
}

function actorOf(c: Context<AppEnv>): Actor {
  const remoteAddr = c.env?.remoteAddr;
  return { user: c.get("identity").username, ...(remoteAddr ? { remoteAddr } : {}) };
}

/** Builds the router; mounted under `/v1` by the app. */
export function adminRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  // Per-route guards: a `use("*")` here would also guard every other /v1 route once mounted.
  const admin = requireAdmin(ctx);

  r.get("/resources/:kind", admin, async (c) => {
    const page = await listResources(ctx, kindParam(c), {
      limit: limitQuery(c, DEFAULT_RESOURCE_PAGE, MAX_RESOURCE_PAGE),
      after: c.req.query("after") || undefined,
      bot: c.req.query("bot") || undefined,
    });
    return c.json({
      items: page.items.map(withRevision),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });

  const getOne = async (c: Context<AppEnv>) => {
    const kind = kindParam(c);
    const name = nameParam(c);
    const stored = await getResource(ctx, kind, name);
    if (!stored) throw new NotFoundError(`${kind} "${name}" not found`);
    return c.json({ item: withRevision(stored) });
  };
  r.get("/resources/bot_instance/:bot/:id", admin, getOne);
  r.get("/resources/:kind/:name", admin, getOne);

  r.post("/resources", admin, async (c) => {
    const body = await readJson(c, PutManyBody);
    const resources = body.resources.map((raw, i) => {
      try {
        return parseResource(raw) as CreatableResource;
      } catch (err) {
        if (!(err instanceof BadParameterError)) throw err;
        const path = `resources[${i}].${err.details?.path ?? ""}`;
        throw new BadParameterError(`resources[${i}]: ${err.message}`, { details: { path } });
      }
    });
    const results = await putResources(ctx, resources, body.mode, actorOf(c));
    return c.json({
      items: results.map((r) => withRevision(r.stored)),
      created: results.map((r) => r.created),
    });
  });

  r.put("/resources/:kind/:name", admin, async (c) => {
    const kind = kindParam(c);
    const name = nameParam(c);
    const body = await readJson(c, PutBody);
    if (kind === "bot_instance") {
      throw new BadParameterError("bot_instance resources are created by joins and are read-only");
    }
    const resource = parseResource(body.resource) as CreatableResource;
    if (resource.kind !== kind) {
      throw new BadParameterError(`kind: "${resource.kind}" does not match the URL (${kind})`, {
        details: { path: "kind" },
      });
    }
    if (resource.metadata.name !== name) {
      throw new BadParameterError(
        `metadata.name: "${resource.metadata.name}" does not match the URL (${name})`,
        { details: { path: "metadata.name" } },
      );
    }
    const result = await putResource(ctx, resource, body.mode, actorOf(c));
    return c.json({ item: withRevision(result.stored), created: result.created });
  });

  const deleteOne = async (c: Context<AppEnv>) => {
    await deleteResource(ctx, kindParam(c), nameParam(c), actorOf(c));
    return c.json({});
  };
  r.delete("/resources/bot_instance/:bot/:id", admin, deleteOne);
  r.delete("/resources/:kind/:name", admin, deleteOne);

  r.post("/tokens/:name/rotate", admin, async (c) => {
    const stored = await requestTokenRotation(ctx, c.req.param("name"));
    return c.json({ item: withRevision(stored) });
  });

  r.get("/audit", admin, async (c) => {
    const type = c.req.query("type") || undefined;
    if (type !== undefined && !isAuditEventType(type)) {
      throw new BadParameterError(
        `type: unknown audit event type (types: ${AUDIT_EVENT_TYPES.join(", ")})`,
        { details: { path: "type" } },
      );
    }
    const limit = limitQuery(c, 100, MAX_AUDIT_PAGE);
    const after = c.req.query("after") || undefined;
    return c.json(await listAudit(ctx, { type, limit, after }));
  });

  return r;
}
