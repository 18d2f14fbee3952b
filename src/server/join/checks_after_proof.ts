/**
 * The checks a join runs once the first challenge is solved, in Teleport's
 * order: recovery budget (case E), lock, the previous join state (cases D and
 * E), and the refreshing instance (case D). A join state that fails to verify
 * locks the token. A verification begun early (before the token was read) is
 * used when it had the same inputs as the one the token calls for.
 *
 * @module
 */
import { AccessDeniedError, KeyboundError } from "../../errors.ts";
import {
  joinStateKid,
  JoinStateVerificationError,
  verifyJoinState,
} from "../../protocol/join_state.ts";
import type { Lock } from "../../resources/schemas.ts";
import type { ServerContext } from "../context.ts";
import { createLockMutations, joinStateLockMessage, lockedError } from "../locks.ts";
import { joinStateKeys } from "../rotation/join_state_keys.ts";
import { statusOf } from "./commit.ts";
import { recoveryEvent } from "./events.ts";
import { connectionOf, type FailureContext, JoinFailure, lockingFailure } from "./failures.ts";
import { type FinishReads, readChecks } from "./finish.ts";
import { joinsRemaining, modeOf } from "./policy.ts";
import type { JoinRequestContext } from "./request_context.ts";
import type { JoinSession } from "./session_state.ts";

/** What a join-state verification is run on. */
export interface JoinStateInputs {
  /** The verification's options. */
  options: Parameters<typeof verifyJoinState>[0];
  /** The keys it trusts (and which of them a rotation dropped). */
  trusted: ReturnType<typeof joinStateKeys>;
}

/** What verifying `joinState` of bot `botName` is run on now, with the keys trusted now. */
export function joinStateInputs(
  ctx: ServerContext,
  joinState: string,
  botName: string,
  expect: { recoverySequence: number; botInstanceId: string },
): JoinStateInputs {
  const trusted = joinStateKeys(ctx);
  return {
    trusted,
    options: {
      joinState,
      clusterName: ctx.clusterName,
      botName,
      trustedKeys: trusted.keys,
      now: ctx.now(),
      expect,
    },
  };
}

/**
 * A join-state verification begun with the session's expectations, before
 * the token was read (see `prepareContinue`); its outcome is used
 * only if the verification the reads call for has the same inputs.
 */
export interface EarlyJoinState {
  /** What it was run on. */
  inputs: JoinStateInputs;
  /** Its outcome. */
  claims: ReturnType<typeof verifyJoinState>;
}

/** True if two verifications check the same document the same way (their times aside). */
function sameJoinStateInputs(a: JoinStateInputs, b: JoinStateInputs): boolean {
  const x = a.options;
  const y = b.options;
  return x.joinState === y.joinState && x.botName === y.botName &&
    x.clusterName === y.clusterName &&
    x.expect.recoverySequence === y.expect.recoverySequence &&
    x.expect.botInstanceId === y.expect.botInstanceId &&
    x.trustedKeys.length === y.trustedKeys.length &&
    x.trustedKeys.every((k, i) =>
      k.kid === y.trustedKeys[i].kid && k.keyPair.publicKey === y.trustedKeys[i].keyPair.publicKey
    );
}

/**
 * The checks after the first proof, in Teleport's order: recovery budget
 * (case E), lock, join state (cases D and E), instance (case D). Returns the
 * session with the verified join state's instance (recoveries).
 */
export async function checksAfterProof(
  ctx: ServerContext,
  session: JoinSession,
  read: FinishReads,
  lock: Lock | null,
  rc: JoinRequestContext,
  where: FailureContext,
  early: EarlyJoinState | null,
): Promise<JoinSession> {
  if (session.flow === "onboarding") {
    if (lock) throw lockedError(lock);
    return session;
  }
  const token = read.entry.token;
  const status = statusOf(token);
  const mode = modeOf(token);
  if (session.flow === "recovery" && mode === "standard" && !joinsRemaining(token)) {
    const err = new KeyboundError("NO_RECOVERIES_REMAINING", "no rejoins remaining");
    throw new JoinFailure(err, [recoveryEvent(session, where, {
      error: err.message,
      publicKey: session.bound_key,
      count: status.recovery_count,
      mode,
    })]);
  }
  if (lock) throw lockedError(lock);
  let prevInstance: string | undefined;
  if (status.recovery_count > 0 && mode !== "insecure") {
    if (!session.join_state) {
      throw new KeyboundError(
        "JOIN_STATE_REQUIRED",
        "previous join state is required but was not provided",
      );
    }
    try {
      const inputs = joinStateInputs(ctx, session.join_state, token.spec.bot_name, {
        recoverySequence: status.recovery_count,
        botInstanceId: status.bound_bot_instance_id ?? "",
      });
      const trusted = inputs.trusted;
      const claims = await (early && sameJoinStateInputs(early.inputs, inputs)
        ? early.claims
        : verifyJoinState(inputs.options));
      prevInstance = claims.bot_instance_id;
      if (trusted.dropped.size > 0 && trusted.dropped.has(joinStateKid(session.join_state))) {
        ctx.log.warn("join state signed by a bound_keypair key a rotation dropped; accepted", {
          bot: session.bot,
          token: session.token,
        });
      }
    } catch (e) {
      if (!(e instanceof JoinStateVerificationError)) throw e;
      const { mutations } = createLockMutations(ctx, {
        target: { join_token: session.token },
        message: joinStateLockMessage(session.token, session.bot),
        remoteAddr: rc.remoteAddr,
      });
      // Locked only against the token as read (docs/security.md, "Locks").
      throw await lockingFailure(
        ctx,
        new KeyboundError("JOIN_STATE_INVALID", "join state verification failed"),
        [{
          type: "join_token.bound_keypair.join_state_verification_failed",
          status: { success: false, error: e.message },
          ...connectionOf(rc.remoteAddr),
          token_name: session.token,
          bot_name: session.bot,
        }],
        mutations,
        readChecks(session, read),
      );
    }
  }
  if (session.flow === "refresh" && session.refresh!.instance !== status.bound_bot_instance_id) {
    throw new AccessDeniedError("bot instance mismatch");
  }
  return prevInstance === undefined ? session : { ...session, prev_instance: prevInstance };
}
