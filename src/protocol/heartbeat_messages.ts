/**
 * The heartbeat message (docs/protocol.md §6), shared by the agent that sends
 * it and the server that records it.
 *
 * @module
 */
import * as z from "zod";

/** Path of the heartbeat endpoint. */
export const HEARTBEAT_PATH = "/v1/bot/heartbeat";

/** Body of `POST /v1/bot/heartbeat`; self-reported, so only bounded, never trusted. */
export const HeartbeatRequest = z.strictObject({
  /** First heartbeat since the process started. */
  is_startup: z.boolean(),
  /** tbot version. */
  version: z.string().max(64),
  /** Host name. */
  hostname: z.string().max(256),
  /** Seconds since the agent started. */
  uptime_seconds: z.number().int().min(0).max(100 * 365 * 24 * 3600),
  /** Running once rather than as a daemon. */
  one_shot: z.boolean(),
  /** CPU architecture. */
  architecture: z.string().max(64),
  /** Operating system. */
  os: z.string().max(64),
});
/** A heartbeat as the bot reports it. */
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;
