/**
 * `continue` of a bound-keypair join (docs/protocol.md §4.6; Teleport's
 * cases A–E; `begin` is in begin.ts). Opens the sealed session, checks that
 * the request is bound to it (a refresh signs every `continue` with the
 * certificate `begin` presented) and hands the answer on (answers.ts), which
 * runs the checks that must follow proof of possession (lock, join state,
 * instance), asks for a rotation when one is due, and finally issues
 * credentials and commits everything at once. What depends only on the
 * session is begun as soon as it opens ({@linkcode prepareContinue}).
 *
 * @module
 */
import { challengeHash } from "../../protocol/signed_request.ts";
import { KeyboundError } from "../../errors.ts";
import { verifyChallengeSolution } from "../../protocol/challenge.ts";
import { verifyJoinState } from "../../protocol/join_state.ts";
import type { ContinueRequest, JoinResponse } from "../../protocol/messages.ts";
import { subjectKeyIdentifier } from "../../pki/mod.ts";
import { fromPem } from "../../util/encoding.ts";
import { openSession } from "../../protocol/session.ts";
import type { ServerContext } from "../context.ts";
import type { VerifiedIdentity } from "../hono_env.ts";
import { answerChallenge, answerRotation, readStep, type StartedAnswer } from "./answers.ts";
import { type EarlyJoinState, joinStateInputs } from "./checks_after_proof.ts";
import { challengedKey } from "./challenged_keys.ts";
import { auditingFailures } from "./failures.ts";
import type { JoinRequestContext } from "./request_context.ts";
import type { JoinSession, PendingChallenge } from "./session_state.ts";

/** Refreshes must sign every `continue` with the certificate `begin` presented. */
async function checkRefreshBinding(
  session: JoinSession,
  identity: VerifiedIdentity | null,
  answer: ContinueRequest["answer"],
  expectedChash: Promise<string>,
): Promise<void> {
  if (!session.refresh) {
    if (identity) {
      throw new KeyboundError(
        "UNAUTHENTICATED",
        "this join was begun without a certificate; its continue requests must not be signed",
      );
    }
    return;
  }
  if (!identity) {
    throw new KeyboundError(
      "UNAUTHENTICATED",
      "a refresh must sign every continue request with its certificate",
    );
  }
  if (identity.certSha256 !== session.refresh.cert_sha256) {
    throw new KeyboundError(
      "UNAUTHENTICATED",
      "continue request is signed by another certificate than the one that began the join",
    );
  }
  if (answer.type === "challenge_solution" && session.pending.type === "challenge") {
    if (identity.chash !== await expectedChash) {
      throw new KeyboundError(
        "UNAUTHENTICATED",
        "signed request chash does not match the challenge being answered",
      );
    }
  }
}

/** Opens the sealed session of a `continue` (`SESSION_INVALID` if forged, malformed or expired). */
export function openJoinSession(ctx: ServerContext, blob: string): Promise<JoinSession> {
  return openSession<JoinSession>(ctx.sessionKey, blob, ctx.now());
}

/** Verifies a challenge solution under the challenged key. */
async function verifySolution(
  ctx: ServerContext,
  pending: PendingChallenge,
  solution: string,
): Promise<void> {
  await verifyChallengeSolution({
    solution,
    challenge: pending.challenge,
    publicKey: await challengedKey(pending.public_key),
    clusterName: ctx.clusterName,
    now: ctx.now(),
  });
}

/** `p` with a handler attached, so a rejection awaited later is not reported as unhandled first. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * The work of a `continue` that depends only on its sealed session, begun
 * as soon as the session opens: while the route checks the request's
 * signature, the solution's signature is verified, the `chash` the request
 * must carry is computed and the step's reads go to the backend (each waits
 * on another thread or on storage). Nothing here is looked at before the
 * request's signature and binding are checked, and nothing is written.
 */
export interface PreparedContinue {
  /** The opened session (`SESSION_INVALID` if forged, malformed or expired). */
  session: Promise<JoinSession>;
  /**
   * Once the session is open: the solution's verification, the first round
   * of the step's reads and the join state's verification against what
   * `begin` saw of the token (each wrapped, so awaiting this does not wait
   * for them), or null unless the answer solves a pending challenge.
   */
  started: Promise<StartedAnswer | null>;
  /** base64url SHA-256 of the pending challenge (refreshes answering one), else "". */
  chash: Promise<string>;
}

/** Opens the session of `req` and starts what depends only on it ({@linkcode PreparedContinue}). */
export function prepareContinue(ctx: ServerContext, req: ContinueRequest): PreparedContinue {
  const session = started(openJoinSession(ctx, req.session));
  const answer = req.answer;
  const solution = (s: JoinSession) =>
    answer.type === "challenge_solution" && s.pending.type === "challenge" ? s.pending : null;
  return {
    session,
    started: started(session.then((s) => {
      const pending = solution(s);
      if (!pending || answer.type !== "challenge_solution") return null;
      // The certificate this answer may lead to needs its key's identifier.
      started(subjectKeyIdentifier(fromPem("PUBLIC KEY", s.subject.tls)));
      return {
        solved: started(verifySolution(ctx, pending, answer.solution)),
        reads: started(readStep(ctx, s)),
        joinState: earlyJoinState(ctx, s),
      };
    })),
    chash: started(session.then((s) => {
      const pending = solution(s);
      return pending && s.refresh ? challengeHash(pending.challenge) : "";
    })),
  };
}

/**
 * `POST /v1/join/bound-keypair/continue`: checks an answer and returns the
 * next step or the result. `prepared` is the work already begun on its
 * session ({@linkcode prepareContinue}), so the route can overlap it with the
 * signature check; without it, it is begun here.
 */
export async function continueJoin(
  ctx: ServerContext,
  req: ContinueRequest,
  rc: JoinRequestContext,
  prepared: PreparedContinue = prepareContinue(ctx, req),
): Promise<JoinResponse> {
  const unknown = { tokenName: "", remoteAddr: rc.remoteAddr };
  const session = await auditingFailures(ctx, unknown, () => prepared.session);
  const where = { tokenName: session.token, remoteAddr: rc.remoteAddr };
  return auditingFailures(ctx, where, async () => {
    const answer = req.answer;
    // The solution's outcome is looked at only after the request's binding.
    const begun = await prepared.started;
    await checkRefreshBinding(session, rc.identity, answer, prepared.chash);
    switch (answer.type) {
      case "giving_up":
        ctx.log.info("join client gave up", {
          token: session.token,
          reason: answer.reason,
          message: answer.message ?? "",
        });
        return { result: null };
      case "rotation_response":
        return await answerRotation(ctx, session, answer.public_key, where);
      case "challenge_solution":
        return await answerChallenge(ctx, session, begun, rc, where);
    }
  });
}

/** The session's join state verified against what `begin` saw of the token, or null. */
function earlyJoinState(ctx: ServerContext, session: JoinSession): EarlyJoinState | null {
  if (!session.join_state || session.expect.count === 0) return null;
  const inputs = joinStateInputs(ctx, session.join_state, session.bot, {
    recoverySequence: session.expect.count,
    botInstanceId: session.expect.instance,
  });
  return { inputs, claims: started(verifyJoinState(inputs.options)) };
}
