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
import { AuditEvent, type AuditEventInput, type AuditEventType } from "../protocol/audit.ts";

export type { AuditEvent, AuditEventType };

/** Input to {@linkcode auditMutation}: an event without id and time. */
export type AuditInput = AuditEventInput;

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
  const entries = await ctx.backend.list<unknown>(AUDIT_PREFIX, { reverse: true });
  for (const e of entries) {
    const parsed = AuditEvent.safeParse(e.value);
    if (!parsed.success) {
      ctx.log.warn("ignoring malformed stored audit event", { key: e.key.join("/") });
      continue;
    }
    if (options.type && parsed.data.type !== options.type) continue;
    out.push(parsed.data);
    if (out.length >= limit) break;
  }
  return out;
}
