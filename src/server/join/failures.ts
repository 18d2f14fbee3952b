/**
 * Audit trail of failed joins: every failure leaves a `join.failed` event,
 * and security-relevant ones also their specific events (a failed recovery,
 * a join state that did not verify, a generation mismatch). A failure that
 * locks commits its lock and events first, checked against the reads it was
 * derived from ({@linkcode lockingFailure}).
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { Check, Mutation } from "../../storage/backend.ts";
import { type AuditInput, auditMutations, commitWithJoinFailure } from "../audit.ts";
import type { ServerContext } from "../context.ts";

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
 * A join failure with the audit events it must leave. Thrown from anywhere inside {@linkcode auditingFailures}, which stores
 * them and rethrows {@linkcode JoinFailure.error}, so nothing escapes the join
 * in this wrapper. It is a `KeyboundError` with the same code and message so
 * that code between the throw and the audit layer sees the failure as itself.
 */
export class JoinFailure extends KeyboundError {
  /** The error the client gets. */
  readonly error: KeyboundError;
  /** Events stored with the failure's `join.failed` count. */
  readonly events: readonly AuditInput[];

  /**
   * @param error the error the client gets
   * @param events events stored with the failure
   */
  constructor(error: KeyboundError, events: AuditInput[]) {
    super(error.code, error.message, { cause: error, details: error.details });
    this.name = "JoinFailure";
    this.error = error;
    this.events = events;
  }
}

/**
 * What a step read changed before a lock derived from it could be committed:
 * nothing was written, and the step reads again and decides again.
 */
export class StaleReads extends Error {
  /** The error. */
  constructor() {
    super("the state a lock was derived from changed before its commit");
    this.name = "StaleReads";
  }
}

/**
 * A failure that locks, derived from what the step read: the lock's
 * `mutations` and the failure's `events` are committed by one
 * compare-and-swap whose `checks` are those reads (the session's used-marker
 * still absent, the token's and instance's versions as read). Returns the
 * {@linkcode JoinFailure} to throw (its events are stored already, so the
 * audit trail never tells of a lock that was not written); throws
 * {@linkcode StaleReads} if a check failed, in which case nothing was written.
 */
export async function lockingFailure(
  ctx: ServerContext,
  error: KeyboundError,
  events: AuditInput[],
  lock: Mutation[],
  checks: Check[],
): Promise<JoinFailure> {
  const mutations = [...lock, ...events.flatMap((ev) => auditMutations(ctx, ev))];
  const r = await ctx.backend.commit({ checks, mutations });
  if (!r.ok) throw new StaleReads();
  return new JoinFailure(error, []);
}

/**
 * Runs `fn`, the one layer that audits join failures: on failure stores the
 * `join.failed` count, plus a {@linkcode JoinFailure}'s events,
 * in one commit, and rethrows the client's error. Unexpected errors are
 * recorded as `INTERNAL` and rethrown as they are.
 */
export async function auditingFailures<T>(
  ctx: ServerContext,
  where: FailureContext,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const failure = e instanceof JoinFailure ? e : new JoinFailure(
      e instanceof KeyboundError ? e : new KeyboundError("INTERNAL", "internal error"),
      [],
    );
    const err = failure.error;
    const stored = await commitWithJoinFailure(
      ctx,
      { ...where, code: err.code, message: err.message },
      () => failure.events.flatMap((ev) => auditMutations(ctx, ev)),
    );
    if (!stored) ctx.log.error("could not store join failure", { token: where.tokenName });
    ctx.log.info("join failed", { token: where.tokenName, code: err.code, error: err.message });
    throw e instanceof JoinFailure ? e.error : e;
  }
}
