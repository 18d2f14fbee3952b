/**
 * Audit trail of failed joins: every failure leaves a `join.failed` event,
 * and security-relevant ones also their specific events (a failed recovery,
 * a join state that did not verify, a generation mismatch) and possibly a
 * lock, all stored in one commit.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { Mutation } from "../../storage/backend.ts";
import { type AuditInput, auditMutations, commitWithJoinFailure } from "../audit.ts";
import type { ServerContext } from "../context.ts";

// Errors whose join.failed event is already stored, so the outer handler
// does not store a second one.
const audited = new WeakSet<object>();

/** Where a failure happened. */
export interface FailureContext {
  /** Token name, `""` when not known (a session that could not be opened). */
  tokenName: string;
  /** Peer address. */
  remoteAddr?: string;
}

/** `connection` field of an event, when the peer address is known. */
export function connectionOf(
  remoteAddr: string | undefined,
): Partial<Pick<AuditInput, "connection">> {
  return remoteAddr ? { connection: { remote_addr: remoteAddr } } : {};
}

/**
 * Stores `events` and `mutations` (say, a lock) and counts the failure into
 * its aggregated `join.failed` row, in one commit, and returns `err` for the
 * caller to throw.
 */
export async function recordFailure(
  ctx: ServerContext,
  err: KeyboundError,
  where: FailureContext,
  events: AuditInput[],
  mutations: Mutation[] = [],
): Promise<KeyboundError> {
  const stored = await commitWithJoinFailure(
    ctx,
    { ...where, code: err.code, message: err.message },
    () => [...mutations, ...events.flatMap((e) => auditMutations(ctx, e))],
  );
  if (!stored) ctx.log.error("could not store join failure", { token: where.tokenName });
  ctx.log.info("join failed", { token: where.tokenName, code: err.code, error: err.message });
  audited.add(err);
  return err;
}

/**
 * Runs `fn`; on failure stores `join.failed` (unless {@linkcode recordFailure}
 * already did) and rethrows. Unexpected errors are recorded as `INTERNAL`.
 */
export async function auditingFailures<T>(
  ctx: ServerContext,
  where: FailureContext,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!audited.has(e as object)) {
      const err = e instanceof KeyboundError ? e : new KeyboundError("INTERNAL", "internal error");
      await recordFailure(ctx, err, where, []);
    }
    throw e;
  }
}
