/**
 * Audit events as the admin API returns them (docs/protocol.md §7): a common
 * envelope (type, id, time, outcome, peer) plus event-specific fields.
 *
 * @module
 */
import { z } from "zod";

/** Audit event types Keybound emits. */
export const AuditEventType = z.enum([
  "join_token.bound_keypair.recovery",
  "join_token.bound_keypair.rotation",
  "join_token.bound_keypair.join_state_verification_failed",
  "bot.join",
  "bot.generation_mismatch",
  "lock.created",
  "join.failed",
  "resource.created",
  "resource.deleted",
  "cert.create",
]);
/** An audit event type. */
export type AuditEventType = z.infer<typeof AuditEventType>;

/** JSON a field of an event may hold. */
const Json: z.ZodType<JsonField> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(Json),
    z.record(z.string(), Json),
  ])
);
/** A JSON value. */
export type JsonField =
  | string
  | number
  | boolean
  | null
  | JsonField[]
  | { [key: string]: JsonField };

/** A stored audit event: the envelope, then event-specific fields (§7). */
export const AuditEvent = z.object({
  type: AuditEventType,
  id: z.string(),
  time: z.string(),
  status: z.object({ success: z.boolean(), error: z.string().optional() }),
  connection: z.object({ remote_addr: z.string().optional() }).optional(),
}).catchall(Json);
/** An audit event. */
export type AuditEvent = z.infer<typeof AuditEvent>;
