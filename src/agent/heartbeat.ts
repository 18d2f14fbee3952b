/**
 * Heartbeats (docs/protocol.md §6): the agent tells the auth service, under
 * its own certificate, that it is alive and what it runs on. The auth service
 * records them on the bot instance, where `tctl bots instances show` displays
 * them. They are self-reported and never trusted for decisions.
 *
 * @module
 */
import { HEARTBEAT_PATH, type HeartbeatRequest } from "../protocol/heartbeat_messages.ts";
import { errorFromWire, isKeyboundError, KeyboundError } from "../errors.ts";
import { signRequest } from "../protocol/signed_request.ts";
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
  const body = JSON.stringify(o.body);
  const authorization = await signRequest(
    { certDer: o.identity.certDer, privateKey: o.identity.privateKey },
    { method: "POST", path: HEARTBEAT_PATH, body, now: o.now },
  );
  let res: Response;
  try {
    res = await o.fetch(o.baseUrl + HEARTBEAT_PATH, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body,
      signal: o.signal,
    });
  } catch (cause) {
    throw new KeyboundError("CONNECTION_FAILED", `heartbeat: cannot reach ${o.baseUrl}`, { cause });
  }
  if (res.ok) {
    await res.body?.cancel();
    return;
  }
  const parsed = await res.json().catch(() => null);
  const err = errorFromWire(res.status, parsed);
  if (isKeyboundError(err, "NOT_IMPLEMENTED") || isKeyboundError(err, "NOT_FOUND")) return;
  throw err;
}
