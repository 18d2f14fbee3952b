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
 * A join failure with the audit events and mutations (say, a lock) it must
 * leave. Thrown from anywhere inside {@linkcode auditingFailures}, which stores
 * them and rethrows {@linkcode JoinFailure.error}, so nothing escapes the join
 * in this wrapper. It is a `KeyboundError` with the same code and message so
 * that code between the throw and the audit layer sees the failure as itself.
 */
export class JoinFailure extends KeyboundError {
  /** The error the client gets. */
  readonly error: KeyboundError;
  /** Events stored with the failure's `join.failed` count. */
  readonly events: readonly AuditInput[];
  /** Storage mutations committed with them. */
  readonly mutations: readonly Mutation[];

  /**
   * @param error the error the client gets
   * @param events events stored with the failure
   * @param mutations mutations (say, a lock) committed with them
   */
  constructor(error: KeyboundError, events: AuditInput[], mutations: Mutation[] = []) {
    super(error.code, error.message, { cause: error, details: error.details });
    this.name = "JoinFailure";
    this.error = error;
    this.events = events;
    this.mutations = mutations;
  }
}

/**
 * Runs `fn`, the one layer that audits join failures: on failure stores the
 * `join.failed` count, plus a {@linkcode JoinFailure}'s events and mutations,
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
      () => [...failure.mutations, ...failure.events.flatMap((ev) => auditMutations(ctx, ev))],
    );
    if (!stored) ctx.log.error("could not store join failure", { token: where.tokenName });
    ctx.log.info("join failed", { token: where.tokenName, code: err.code, error: err.message });
    throw e instanceof JoinFailure ? e.error : e;
  }
}
