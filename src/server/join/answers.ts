/**
 * The answers a `continue` carries besides giving up: a rotation response
 * (the new key, which is then challenged) and a challenge solution. A solved
 * challenge reads the token, locks, used-marker, bot and instance in one
 * round, and decides on them: a requested rotation, the checks after proof,
 * then the result ({@linkcode finish}) — again on fresh reads when a lock
 * derived from stale ones could not commit.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { BadParameterError, inContext, KeyboundError } from "../../errors.ts";
import { publicKeysEqual } from "../../crypto/keys.ts";
import { parseAuthorizedKey, toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import type { JoinResponse, StepResponse } from "../../protocol/messages.ts";
import type { Bot, BotInstance, Lock } from "../../resources/schemas.ts";
import type { Entry } from "../../storage/backend.ts";
import { readBotInstance } from "../bot_instances.ts";
import type { ServerContext } from "../context.ts";
import { usedSessionKey } from "../keys.ts";
import { findLockInForce, lockedError, lockSnapshot } from "../locks.ts";
import { findBot } from "./certs.ts";
import { checksAfterProof, type EarlyJoinState } from "./checks_after_proof.ts";
import {
  expectationsHold,
  readToken,
  sessionUsed,
  type TokenEntry,
  unexpectedBackendState,
} from "./commit.ts";
import { challengedKey } from "./challenged_keys.ts";
import { recoveryEvent, rotationEvent } from "./events.ts";
import { type FailureContext, JoinFailure, StaleReads } from "./failures.ts";
import { finish, type FinishReads } from "./finish.ts";
import { rotationDue } from "./policy.ts";
import type { JoinRequestContext } from "./request_context.ts";
import type { JoinSession, PendingChallenge } from "./session_state.ts";
import { challengeStep, rotationStep } from "./steps.ts";

/**
 * What a `continue` that answers a pending challenge begins as soon as its
 * session opens (see `prepareContinue`), each wrapped so that awaiting this
 * does not wait for them.
 */
export interface StartedAnswer {
  /** The solution's verification. */
  solved: Promise<void>;
  /** The first round of the step's reads. */
  reads: Promise<StepReads>;
  /** The join state's verification against what `begin` saw of the token, or null. */
  joinState: EarlyJoinState | null;
}

/** Parses an authorized_keys field; `BAD_PARAMETER` naming `path` if it is not one. */
async function parseKeyField(text: string, path: string): Promise<CryptoKey> {
  try {
    return (await parseAuthorizedKey(text)).key;
  } catch (e) {
    throw inContext(path, e, "BAD_PARAMETER", { path });
  }
}

function unexpectedAnswer(got: string, session: JoinSession): KeyboundError {
  const wanted = session.pending.type === "challenge" ? "challenge_solution" : "rotation_response";
  return new KeyboundError("BAD_REQUEST", `unexpected answer "${got}": expected "${wanted}"`);
}

/**
 * A rotation response: its key (after a requested rotation, never the key
 * being replaced) is challenged next, for the same purpose.
 */
export async function answerRotation(
  ctx: ServerContext,
  session: JoinSession,
  publicKeyText: string,
  where: FailureContext,
): Promise<StepResponse> {
  if (session.pending.type !== "rotation") throw unexpectedAnswer("rotation_response", session);
  const purpose = session.pending.purpose;
  const key = await parseKeyField(publicKeyText, "answer.public_key");
  const canonical = await toAuthorizedKey(key);
  if (purpose === "rotation") {
    const current = await challengedKey(session.bound_key);
    if (await publicKeysEqual(current, key)) {
      const msg = "public key may not be reused after rotation";
      throw new JoinFailure(new BadParameterError(msg), [
        rotationEvent(session, where, { previous: session.bound_key, next: canonical, error: msg }),
      ]);
    }
  }
  return await challengeStep(ctx, session, purpose, canonical);
}

/**
 * A challenge solution: once the solution verified, decides on the step's
 * reads (begun with the session, `begun.reads`), reading again while a lock
 * derived from stale reads could not commit.
 */
export async function answerChallenge(
  ctx: ServerContext,
  session: JoinSession,
  begun: StartedAnswer | null,
  rc: JoinRequestContext,
  where: FailureContext,
): Promise<JoinResponse> {
  const pending = session.pending;
  if (pending.type !== "challenge" || !begun) {
    throw unexpectedAnswer("challenge_solution", session);
  }
  try {
    await begun.solved;
  } catch (e) {
    const consumes = session.flow !== "refresh" && pending.purpose !== "rotation";
    if (!(e instanceof KeyboundError) || !consumes) throw e;
    throw new JoinFailure(e, [recoveryEvent(session, where, {
      error: e.message,
      publicKey: pending.public_key,
      count: 0,
      mode: session.mode,
    })]);
  }

  // A lock derived from this step's reads is committed only if they still
  // hold (`StaleReads` otherwise): then the step reads and decides again.
  for (let round = 1;; round++) {
    const reads = round === 1 ? begun.reads : readStep(ctx, session);
    try {
      return await decideOnReads(ctx, session, pending, await reads, begun.joinState, rc, where);
    } catch (e) {
      if (!(e instanceof StaleReads)) throw e;
      if (round >= MAX_STEP_ROUNDS) {
        throw new KeyboundError("CONFLICT", "join state changed during the join; please try again");
      }
    }
  }
}

/** Rounds of reads one challenge answer takes at most when its reads go stale. */
const MAX_STEP_ROUNDS = 3;

/**
 * `err` for a step whose reads show the token or instance moved under it —
 * unless the move was a copy of this same session committing: the winner
 * writes the used-marker in the commit that moves them, so once a read has
 * seen the move, a later read of the marker sees it too (`SESSION_INVALID`,
 * which changes nothing). The step's reads are separate reads, which on some
 * backends (PostgreSQL) do not share a snapshot.
 */
async function refusedOrReplayed(
  ctx: ServerContext,
  session: JoinSession,
  err: KeyboundError,
): Promise<KeyboundError> {
  return await ctx.backend.get(usedSessionKey(session.sid)) ? sessionUsed() : err;
}

/** What one round of a challenge answer reads. */
export interface StepReads {
  /** The token. */
  entry: TokenEntry;
  /** The lock in force on the token (and, for a refresh, the bot user and instance). */
  lock: Lock | null;
  /** The session's used-marker. */
  used: boolean;
  /** The token's bot. */
  bot: Bot | null;
  /** The refreshing instance (refreshes), else null. */
  instance: Entry<BotInstance> | null;
  /** Version of the locks-changed marker `lock` was decided on; the commit checks it. */
  locksVersion: string | null;
}

/**
 * One round of reads serves a whole step: the used-marker (so a replayed
 * session is refused before it could trigger a lock twice) and the bot and
 * instance that `finish` needs. A refresh's locks on the bot user and
 * instance (docs/protocol.md §2 rule 6, left to us by the signed request
 * check) come from the same listing as the token's. On Deno KV the point
 * reads go out as one batch.
 */
export async function readStep(ctx: ServerContext, session: JoinSession): Promise<StepReads> {
  const locks = lockSnapshot(ctx);
  const [entry, lock, used, bot, instance, { version: locksVersion }] = await Promise.all([
    readToken(ctx, session.token),
    findLockInForce(
      ctx,
      {
        join_token: session.token,
        ...(session.refresh
          ? { user: botUserName(session.bot), bot_instance_id: session.refresh.instance }
          : {}),
      },
      undefined,
      locks.then((s) => s.locks),
    ),
    ctx.backend.get(usedSessionKey(session.sid)),
    findBot(ctx, session.bot),
    session.refresh
      ? readBotInstance(ctx, session.bot, session.refresh.instance)
      : Promise.resolve(null),
    locks,
  ]);
  return { entry, lock, used: used !== null, bot, instance, locksVersion };
}

/** One round of a challenge answer's reads and the decision taken on them. */
async function decideOnReads(
  ctx: ServerContext,
  session: JoinSession,
  pending: PendingChallenge,
  reads: StepReads,
  early: EarlyJoinState | null,
  rc: JoinRequestContext,
  where: FailureContext,
): Promise<JoinResponse> {
  // Proof of possession is done: only now are the token's state and locks
  // consulted (the reads may have been taken while it was being checked).
  const { entry, lock, used, bot, instance, locksVersion } = reads;
  if (used) throw sessionUsed();
  const read: FinishReads = { entry, bot, instance, locksVersion };
  const consumes = session.flow !== "refresh";
  if (!(await expectationsHold(entry.token, session.expect, consumes))) {
    throw await refusedOrReplayed(ctx, session, unexpectedBackendState());
  }

  if (pending.purpose === "rotation") {
    if (lock) throw lockedError(lock);
    const rotated = { ...session, rotated_from: session.bound_key, bound_key: pending.public_key };
    return await finish(ctx, rotated, read, where);
  }
  const proven = { ...session, proven_key: pending.public_key, bound_key: pending.public_key };
  const checked = await checksAfterProof(ctx, proven, read, lock, rc, where, early);
  if (rotationDue(entry.token, ctx.now())) return await rotationStep(ctx, checked, "rotation");
  return await finish(ctx, checked, read, where);
}
