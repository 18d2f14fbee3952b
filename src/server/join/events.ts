/**
 * Audit events specific to bound-keypair joins (docs/protocol.md §7).
 *
 * @module
 */
import type { AuditInput } from "../audit.ts";
import { connectionOf, type FailureContext } from "./failures.ts";
import type { JoinSession } from "./session_state.ts";

/** `join_token.bound_keypair.recovery`, success or (with `error`) failure. */
export function recoveryEvent(
  session: Pick<JoinSession, "token" | "bot">,
  where: FailureContext,
  o: { error?: string; publicKey: string; count: number; mode: string },
): AuditInput {
  return {
    type: "join_token.bound_keypair.recovery",
    status: o.error === undefined ? { success: true } : { success: false, error: o.error },
    ...connectionOf(where.remoteAddr),
    token_name: session.token,
    bot_name: session.bot,
    public_key: o.publicKey,
    recovery_count: o.count,
    recovery_mode: o.mode,
  };
}

/** `join_token.bound_keypair.rotation`, success or (with `error`) failure. */
export function rotationEvent(
  session: JoinSession,
  where: FailureContext,
  o: { previous: string; next: string; error?: string },
): AuditInput {
  return {
    type: "join_token.bound_keypair.rotation",
    status: o.error === undefined ? { success: true } : { success: false, error: o.error },
    ...connectionOf(where.remoteAddr),
    token_name: session.token,
    bot_name: session.bot,
    previous_public_key: o.previous,
    new_public_key: o.next,
  };
}
