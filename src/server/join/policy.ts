/**
 * Token-derived decisions of the join: the effective recovery mode, whether
 * recoveries remain, and whether a rotation is due.
 *
 * @module
 */
import type { Token } from "../../resources/schemas.ts";
import { statusOf } from "./commit.ts";

/** A recovery mode with `""` resolved to `standard`. */
export type Mode = "standard" | "relaxed" | "insecure";

/** The effective recovery mode. */
export function modeOf(token: Token): Mode {
  return token.spec.bound_keypair.recovery.mode || "standard";
}

/** `recovery_count < recovery.limit`. */
export function joinsRemaining(token: Token): boolean {
  return statusOf(token).recovery_count < token.spec.bound_keypair.recovery.limit;
}

/** `rotate_after <= now` and no rotation completed since it was set. */
export function rotationDue(token: Token, now: Date): boolean {
  const after = token.spec.bound_keypair.rotate_after;
  if (!after || Date.parse(after) > now.getTime()) return false;
  const last = statusOf(token).last_rotated_at;
  return !last || Date.parse(last) < Date.parse(after);
}
