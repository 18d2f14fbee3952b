/**
 * Bot instance records (reference §7): created on every recovery, updated
 * with an authentication on every refresh, and carrying self-reported
 * heartbeats. The join server commits instance writes inside its own atomic
 * operation, so this module builds values and mutations instead of writing.
 *
 * @module
 */
import type { HeartbeatRequest } from "../protocol/heartbeat_messages.ts";
import type * as z from "zod";
import { KeyboundError, NotFoundError } from "../errors.ts";
import type { Entry, JsonValue, Mutation } from "../storage/backend.ts";
import type {
  BotInstance,
  BotInstanceAuthentication,
  BotInstanceHeartbeat,
} from "../resources/schemas.ts";
import { formatDuration } from "../util/duration.ts";
import type { ServerContext } from "./context.ts";
import { resourceKey } from "./keys.ts";
import { getResource } from "./resources/mod.ts";

/** Authentications kept per instance; older ones are dropped. */
export const AUTHENTICATION_HISTORY_LIMIT = 10;
/** Heartbeats kept per instance (besides the initial one). */
export const HEARTBEAT_HISTORY_LIMIT = 10;
/** An instance outlives its newest certificate by this margin before it expires. */
export const INSTANCE_EXPIRY_MARGIN_MS = 3600_000;

/** One authentication of an instance. */
export type Authentication = z.infer<typeof BotInstanceAuthentication>;
/** One heartbeat of an instance. */
export type Heartbeat = z.infer<typeof BotInstanceHeartbeat>;

/** Backend key of an instance. */
export function botInstanceKey(botName: string, instanceId: string) {
  return resourceKey("bot_instance", botName, instanceId);
}

/** Reads an instance with its version; null if absent or expired. */
export async function readBotInstance(
  ctx: ServerContext,
  botName: string,
  instanceId: string,
): Promise<Entry<BotInstance> | null> {
  const stored = await getResource(ctx, "bot_instance", `${botName}/${instanceId}`);
  if (!stored) return null;
  return {
    key: botInstanceKey(botName, instanceId),
    value: stored.resource,
    version: stored.version,
  };
}

/** The generation of the instance's latest authentication (0 if it has none). */
export function latestGeneration(instance: BotInstance): number {
  const list = instance.status.latest_authentications;
  return list.length > 0
    ? list[list.length - 1].generation
    : instance.status.initial_authentication?.generation ?? 0;
}

function keepLast<T>(list: T[], n: number): T[] {
  return list.length > n ? list.slice(list.length - n) : list;
}

/** Expiry of an instance whose newest certificate lives `ttlSeconds` from `now`. */
export function instanceExpiry(now: Date, ttlSeconds: number): string {
  return new Date(now.getTime() + ttlSeconds * 1000 + INSTANCE_EXPIRY_MARGIN_MS).toISOString();
}

/** Inputs of {@linkcode newBotInstance}. */
export interface NewBotInstance {
  /** Bot name. */
  botName: string;
  /** New instance id (UUID). */
  instanceId: string;
  /** The instance this one replaces (recoveries). */
  previousInstanceId?: string;
  /** The authentication that created it (generation 1). */
  authentication: Authentication;
  /** `metadata.expires`. */
  expires: string;
}

/** A fresh instance record. */
export function newBotInstance(o: NewBotInstance): BotInstance {
  return {
    kind: "bot_instance",
    version: "v1",
    metadata: { name: `${o.botName}/${o.instanceId}`, expires: o.expires },
    spec: {
      bot_name: o.botName,
      instance_id: o.instanceId,
      ...(o.previousInstanceId ? { previous_instance_id: o.previousInstanceId } : {}),
    },
    status: {
      initial_authentication: o.authentication,
      latest_authentications: [o.authentication],
      latest_heartbeats: [],
    },
  };
}

/** The instance with `auth` appended (history capped) and its expiry extended. */
export function withAuthentication(
  instance: BotInstance,
  auth: Authentication,
  expires: string,
): BotInstance {
  return {
    ...instance,
    metadata: { ...instance.metadata, expires },
    status: {
      ...instance.status,
      latest_authentications: keepLast(
        [...instance.status.latest_authentications, auth],
        AUTHENTICATION_HISTORY_LIMIT,
      ),
    },
  };
}

/** The mutation storing `instance`; the backend drops it once `metadata.expires` passes. */
export function botInstanceMutation(instance: BotInstance): Extract<Mutation, { type: "set" }> {
  const { revision: _revision, ...metadata } = instance.metadata;
  const value = { ...instance, metadata } as unknown as JsonValue;
  return {
    type: "set",
    key: botInstanceKey(instance.spec.bot_name, instance.spec.instance_id),
    value,
    ...(metadata.expires ? { expiresAt: Date.parse(metadata.expires) } : {}),
  };
}

const HEARTBEAT_WRITE_ATTEMPTS = 5;

/**
 * Records a heartbeat on an instance: sets `initial_heartbeat` the first
 * time and appends to `latest_heartbeats` (capped). Retries on concurrent
 * writes; `NOT_FOUND` if the instance does not exist.
 */
export async function recordHeartbeat(
  ctx: ServerContext,
  botName: string,
  instanceId: string,
  report: HeartbeatRequest,
): Promise<void> {
  for (let attempt = 0; attempt < HEARTBEAT_WRITE_ATTEMPTS; attempt++) {
    const entry = await readBotInstance(ctx, botName, instanceId);
    if (!entry) throw new NotFoundError(`bot instance "${botName}/${instanceId}" not found`);
    const hb: Heartbeat = {
      recorded_at: ctx.now().toISOString(),
      is_startup: report.is_startup,
      version: report.version,
      hostname: report.hostname,
      uptime: formatDuration(report.uptime_seconds * 1000),
      join_method: "bound_keypair",
      one_shot: report.one_shot,
      architecture: report.architecture,
      os: report.os,
    };
    const instance = entry.value;
    const updated: BotInstance = {
      ...instance,
      status: {
        ...instance.status,
        initial_heartbeat: instance.status.initial_heartbeat ?? hb,
        latest_heartbeats: keepLast(
          [...instance.status.latest_heartbeats, hb],
          HEARTBEAT_HISTORY_LIMIT,
        ),
      },
    };
    const r = await ctx.backend.commit({
      checks: [{ key: entry.key, version: entry.version }],
      mutations: [botInstanceMutation(updated)],
    });
    if (r.ok) return;
  }
  throw new KeyboundError("CONFLICT", "bot instance was changed concurrently; retry");
}
