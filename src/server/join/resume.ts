/**
 * `POST /v1/join/bound-keypair/resume` (docs/protocol.md §4.9): completes a
 * join whose answer the client lost. The client names the sealed session it
 * was continuing and proves possession of the key the join bound and of the
 * certificate key of the issued certificates. If that session is the last
 * join the token committed, the stored result is returned — same
 * generation, nothing counted, no lock — to the first claimant only: the
 * record is marked with the caller's `resume_id` (stored by the client
 * before its first attempt) in one compare-and-swap, so of two holders of
 * one pending join at most one resumes, and the claimant whose answer is
 * lost again gets the same result when it retries. Anything else is `RESUME_NOT_FOUND`, answered only once the
 * session is closed for good (its used-marker is written, so a `continue`
 * of it still in flight from a client that died can no longer commit): the
 * client then joins normally from its stored state, and the generation
 * counter and join state judge it as before (docs/security.md, "Crash-safe
 * joins").
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { KeyboundError } from "../../errors.ts";
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { sha256, timingSafeEqualString } from "../../crypto/random.ts";
import { toHex } from "../../util/encoding.ts";
import type { ResumeRequest, ResumeResponse } from "../../protocol/join_resume.ts";
import { verifyResumeProof } from "../../protocol/join_resume.ts";
import { openSession } from "../../protocol/session.ts";
import { auditMutations } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey, usedSessionKey } from "../keys.ts";
import { findLockInForce, lockedError } from "../locks.ts";
import { MAX_COMMIT_ATTEMPTS, readToken, statusOf } from "./commit.ts";
import { auditingFailures, connectionOf } from "./failures.ts";
import { readResumeRecord, recordExpiry, resumeRecordMutation } from "./resume_record.ts";
import type { JoinRequestContext } from "./request_context.ts";
import type { JoinSession } from "./session_state.ts";

function notFound(): KeyboundError {
  return new KeyboundError(
    "RESUME_NOT_FOUND",
    "no committed join to resume for this session; join again",
  );
}

/**
 * How long a closed session stays closed after its own expiry: longer than
 * any `continue` that opened it before then can take to reach its commit.
 */
const CLOSED_SESSION_MARGIN_S = 120;

/** Verifies both proofs against the keys the session names; returns the challenged (bound) key. */
async function verifyProofs(
  ctx: ServerContext,
  req: ResumeRequest,
  session: JoinSession,
): Promise<string> {
  if (session.pending.type !== "challenge") {
    throw new KeyboundError(
      "SESSION_INVALID",
      "this join session was not awaiting a challenge solution; it cannot have committed",
    );
  }
  const [boundKey, subjectKey] = await Promise.all([
    parseAuthorizedKey(session.pending.public_key),
    parseAuthorizedKey(session.subject.ssh),
  ]);
  const now = ctx.now();
  const common = {
    clusterName: ctx.clusterName,
    session: req.session,
    resumeId: req.resume_id,
    now,
  };
  await Promise.all([
    verifyResumeProof({
      ...common,
      proof: req.bound_key_proof,
      publicKey: boundKey.key,
      use: "bound",
    }),
    verifyResumeProof({
      ...common,
      proof: req.subject_key_proof,
      publicKey: subjectKey.key,
      use: "subject",
    }),
  ]);
  return session.pending.public_key;
}

/**
 * Closes a session that has not committed, for good: its used-marker makes
 * the commit of any `continue` of it still in flight (from a client that
 * died, through a slow proxy) fail. True if closed now; false if the marker
 * already exists (the session committed or was closed meanwhile).
 */
async function closeSession(ctx: ServerContext, session: JoinSession): Promise<boolean> {
  const key = usedSessionKey(session.sid);
  const now = Math.floor(ctx.now().getTime() / 1000);
  const r = await ctx.backend.commit({
    checks: [{ key, version: null }],
    mutations: [{
      type: "set",
      key,
      value: { closed_at: ctx.now().toISOString(), by: "resume" },
      expiresAt: (Math.max(session.exp, now) + CLOSED_SESSION_MARGIN_S) * 1000,
    }],
  });
  return r.ok;
}

/** `resume`: the committed result of the session, for its first claimant only. */
export async function resumeJoin(
  ctx: ServerContext,
  req: ResumeRequest,
  rc: JoinRequestContext,
): Promise<ResumeResponse> {
  const unknown = { tokenName: "", remoteAddr: rc.remoteAddr };
  // The session's own expiry is that of its last step; a resume is bounded
  // by the record instead, which the backend drops when it expires.
  const session = await auditingFailures(
    ctx,
    unknown,
    () => openSession<JoinSession>(ctx.sessionKey, req.session, null),
  );
  const where = { tokenName: session.token, remoteAddr: rc.remoteAddr };
  return auditingFailures(ctx, where, async () => {
    if (rc.identity) {
      throw new KeyboundError("UNAUTHENTICATED", "a resume request must not be signed");
    }
    // Only the holder of both keys may resume, or close, the session.
    const boundKey = await verifyProofs(ctx, req, session);
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const [record, entry] = await Promise.all([
        readResumeRecord(ctx, session.token),
        readToken(ctx, session.token),
      ]);
      if (!record || record.value.sid !== session.sid) {
        // Not committed: make sure it never will be, so that the client can
        // safely join again from its stored state. If it committed just now,
        // its record is there on the next read.
        if (await closeSession(ctx, session)) throw notFound();
        const again = await readResumeRecord(ctx, session.token);
        if (!again || again.value.sid !== session.sid) throw notFound();
        continue;
      }
      const { result } = record.value;
      // The commit binds exactly the keys the session names; anything else is not this join.
      if (
        record.value.bound_public_key !== boundKey ||
        record.value.subject_key !== session.subject.ssh
      ) {
        throw notFound();
      }
      // An admin who reset or rebound the token since has the last word.
      if ((statusOf(entry.token).bound_public_key ?? "") !== record.value.bound_public_key) {
        throw notFound();
      }
      const lock = await findLockInForce(ctx, {
        join_token: session.token,
        user: botUserName(session.bot),
        bot_instance_id: result.bot_instance_id,
      }, ctx.now());
      if (lock) throw lockedError(lock);
      const claim = toHex(await sha256(req.resume_id));
      const claimedBy = record.value.resumed_by;
      if (claimedBy !== undefined) {
        // Claimed: the same claimant retrying (its answer was lost too) gets
        // the result again; anyone else resumes nothing.
        if (!(await timingSafeEqualString(claimedBy, claim))) throw notFound();
        return { result };
      }
      const r = await ctx.backend.commit({
        checks: [
          { key: record.key, version: record.version },
          { key: resourceKey("token", session.token), version: entry.version },
        ],
        mutations: [
          resumeRecordMutation(
            session.token,
            { ...record.value, resumed_by: claim },
            recordExpiry(record.value),
          ),
          ...auditMutations(ctx, {
            type: "bot.join_resumed",
            status: { success: true },
            ...connectionOf(rc.remoteAddr),
            bot_name: session.bot,
            bot_instance_id: result.bot_instance_id,
            token_name: session.token,
            generation: result.generation,
            committed_at: record.value.committed_at,
          }),
        ],
      });
      if (r.ok) {
        ctx.log.info("join resumed", {
          token: session.token,
          bot_instance_id: result.bot_instance_id,
          generation: result.generation,
        });
        return { result };
      }
      // Lost to another claim or to a token write: re-read.
    }
    throw new KeyboundError("CONFLICT", "resuming the join, please try again");
  });
}
