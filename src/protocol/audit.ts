/**
 * Audit events as the admin API returns them (docs/protocol.md §7): a common
 * envelope (type, id, time, outcome, peer) plus event-specific fields.
 *
 * @module
 */
import * as z from "zod";
import type { JsonValue } from "../storage/backend.ts";

/** Audit event types Keybound emits. */
export const AuditEventType = z.enum([
  "join_token.bound_keypair.recovery",
  "join_token.bound_keypair.rotation",
  "join_token.bound_keypair.join_state_verification_failed",
  "bot.join",
  "bot.join_resumed",
  "bot.generation_mismatch",
  "lock.created",
  "join.failed",
  "resource.created",
  "resource.deleted",
  "cert.create",
  "web.enrollment_created",
  "web.enrolled",
  "web.revoked",
  "ca.rotation",
]);
/** An audit event type. */
export type AuditEventType = z.infer<typeof AuditEventType>;

/** JSON a field of an event may hold. */
const Json: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(Json),
    z.record(z.string(), Json),
  ])
);

/** An event as the server writes it: the envelope without id and time, then event-specific fields. */
export const AuditEventInput = z.object({
  type: AuditEventType,
  status: z.object({ success: z.boolean(), error: z.string().optional() }),
  connection: z.object({ remote_addr: z.string().optional() }).optional(),
}).catchall(Json.optional());
/** An event before it is stored. */
export type AuditEventInput = z.infer<typeof AuditEventInput>;

/** A stored audit event (§7): the envelope with its id and time, then event-specific fields. */
export const AuditEvent = AuditEventInput.extend({ id: z.string(), time: z.string() });
/** An audit event. */
export type AuditEvent = z.infer<typeof AuditEvent>;
