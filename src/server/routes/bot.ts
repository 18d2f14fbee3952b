/**
 * Routes of the bot API (docs/protocol.md §6): heartbeats, signed by the
 * bot's own certificate.
 *
 * @module
 */
import { Hono } from "hono";
import { HeartbeatRequest } from "../../protocol/heartbeat_messages.ts";
import { AccessDeniedError } from "../../errors.ts";
import { recordHeartbeat } from "../bot_instances.ts";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";
import { readJson } from "../http.ts";
import { requireBot } from "../request_auth.ts";

/** Builds the router; mounted under `/v1` by the app. */
export function botRoutes(ctx: ServerContext): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  r.post("/bot/heartbeat", requireBot(ctx), async (c) => {
    const identity = c.get("identity");
    if (identity.botName === undefined || identity.botInstanceId === undefined) {
      throw new AccessDeniedError("heartbeats require a bot certificate");
    }
    const body = await readJson(c, HeartbeatRequest);
    await recordHeartbeat(ctx, identity.botName, identity.botInstanceId, body);
    return c.json({});
  });
  return r;
}
