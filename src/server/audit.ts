/**
 * Audit events, stored in the backend. Events are returned as mutations so a
 * join can write them in the same atomic commit as its state change.
 *
 * @module
 */
import { randomHex } from "../crypto/random.ts";
import type { JsonValue, Mutation } from "../storage/backend.ts";
import { AUDIT_PREFIX, auditKey } from "./keys.ts";
import type { ServerContext } from "./context.ts";

/** Audit event types Keybound emits. */
export type AuditEventType =
  | "join_token.bound_keypair.recovery"
  | "join_token.bound_keypair.rotation"
  | "join_token.bound_keypair.join_state_verification_failed"
  | "bot.join"
  | "bot.join_resumed"
  | "bot.generation_mismatch"
  | "lock.created"
  | "join.failed"
  | "resource.created"
  | "resource.deleted"
  | "cert.create";

/** A stored audit event. */
export interface AuditEvent {
  /** Event type. */
  type: AuditEventType;
  /** Unique id. */
  id: string;
  /** RFC 3339 time. */
  time: string;
  /** Outcome. */
  status: { success: boolean; error?: string };
  /** Where the request came from, when known. */
  connection?: { remote_addr?: string };
  /** Event-specific fields (see docs/protocol.md §7). */
  [field: string]: JsonValue | undefined;
}

/** Input to {@linkcode auditMutation}: an event without id and time. */
export type AuditInput = Omit<AuditEvent, "id" | "time">;

/** Retention of audit events in the backend. */
export const AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** A mutation that stores `event`, for inclusion in an atomic commit. */
export function auditMutation(ctx: ServerContext, event: AuditInput): Mutation {
  const now = ctx.now();
  const id = randomHex(8);
  const value = { ...event, id, time: now.toISOString() } as unknown as JsonValue;
  return {
    type: "set",
    key: auditKey(now, id),
    value,
    expiresAt: now.getTime() + AUDIT_RETENTION_MS,
  };
}

/** Stores `event` on its own (for failures, where there is no state change to join). */
export async function emitAudit(ctx: ServerContext, event: AuditInput): Promise<void> {
  const r = await ctx.backend.commit({ checks: [], mutations: [auditMutation(ctx, event)] });
  if (!r.ok) ctx.log.warn("audit event not stored", { type: event.type });
}

/** Lists events newest first, optionally of one type. */
export async function listAudit(
  ctx: ServerContext,
  options: { type?: string; limit?: number } = {},
): Promise<AuditEvent[]> {
  const limit = options.limit ?? 100;
  const out: AuditEvent[] = [];
  // Filtering by type happens after reading, so read in pages until enough match.
  const entries = await ctx.backend.list<AuditEvent>(AUDIT_PREFIX, { reverse: true });
  for (const e of entries) {
    if (options.type && e.value.type !== options.type) continue;
    out.push(e.value);
    if (out.length >= limit) break;
  }
  return out;
}
