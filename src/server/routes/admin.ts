/**
 * Routes of the admin API (docs/protocol.md §5).
 *
 * @module
 */
import { Hono } from "hono";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";

/** Builds the router; mounted under `/v1` by the app. */
export function adminRoutes(_ctx: ServerContext): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
