/**
 * Heartbeats (docs/protocol.md §6): the agent tells the auth service, under
 * its own certificate, that it is alive and what it runs on. The auth service
 * records them on the bot instance, where `tctl bots instances show` displays
 * them. They are self-reported and never trusted for decisions.
 *
 * @module
 */
import { HEARTBEAT_PATH, type HeartbeatRequest } from "../protocol/heartbeat_messages.ts";
import { isKeyboundError } from "../errors.ts";
import { callApi, IgnoredAnswer } from "../protocol/http_client.ts";
import type { BotIdentity } from "./identity.ts";

/** Path of the heartbeat endpoint. */
export { HEARTBEAT_PATH };

/** Teleport sends a heartbeat every 30 minutes. */
export const HEARTBEAT_INTERVAL_MS = 30 * 60 * 1000;

/** What the agent reports about its host. */
export interface HostInfo {
  /** Agent version. */
  version: string;
  /** Host name. */
  hostname: string;
  /** Operating system (`linux`, `darwin`, …). */
  os: string;
  /** CPU architecture (`x86_64`, `aarch64`, …). */
  architecture: string;
}

/** The heartbeat request body (the wire schema in `protocol/heartbeat_messages.ts`). */
export type HeartbeatBody = HeartbeatRequest;

/** Options of {@linkcode sendHeartbeat}. */
export interface SendHeartbeatOptions {
  /** Auth service base URL. */
  baseUrl: string;
  /** The fetch carrying the trust configuration. */
  fetch: typeof fetch;
  /** The identity that signs the request. */
  identity: BotIdentity;
  /** The body. */
  body: HeartbeatBody;
  /** Signing time. */
  now?: Date;
  /** Cancels the request. */
  signal?: AbortSignal;
}

/**
 * Sends one heartbeat. A server without the endpoint (`NOT_IMPLEMENTED` or
 * 404) is not an error, as Teleport ignores NotImplemented from older servers.
 */
export async function sendHeartbeat(o: SendHeartbeatOptions): Promise<void> {
  try {
    await callApi({ baseUrl: o.baseUrl, fetch: o.fetch }, {
      method: "POST",
      path: HEARTBEAT_PATH,
      body: o.body,
      signer: o.identity,
      response: IgnoredAnswer,
      ...(o.now ? { now: o.now } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    if (isKeyboundError(err, "NOT_IMPLEMENTED") || isKeyboundError(err, "NOT_FOUND")) return;
    throw err;
  }
}
