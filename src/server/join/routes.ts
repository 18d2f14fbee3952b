/**
 * Routes of the bound-keypair join endpoints (docs/protocol.md §4).
 *
 * @module
 */
import { Hono } from "hono";
import type { ServerContext } from "../context.ts";
import type { AppEnv } from "../hono_env.ts";

/** Builds the router; mounted under `/v1` by the app. */
export function joinRoutes(_ctx: ServerContext): Hono<AppEnv> {
  return new Hono<AppEnv>();
}
