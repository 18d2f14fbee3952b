/**
 * `POST /v1/join/bound-keypair/resume` (docs/protocol.md §4.9): completes a
 * join whose answer the client lost. The client names the sealed session it
 * was continuing and proves possession of the key the join bound and of the
 * certificate key of the issued certificates. If that session is the last
 * join the token committed, the stored result is returned — same
 * generation, nothing counted, no lock — and the record is deleted in the
 * same compare-and-swap, so of two holders of one pending join at most one
 * resumes. Anything else is `RESUME_NOT_FOUND`: the client then joins
 * normally, and the generation counter and join state judge it as before
 * (docs/security.md, "Crash-safe joins").
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import type { ResumeRequest, ResumeResponse } from "../../protocol/join_resume.ts";
import { verifyResumeProof } from "../../protocol/join_resume.ts";
import { openSession } from "../../protocol/session.ts";
import { auditMutation } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import { resourceKey } from "../keys.ts";
import { findLockInForce, lockedError } from "../locks.ts";
import { MAX_COMMIT_ATTEMPTS, readToken, statusOf } from "./commit.ts";
import { auditingFailures, connectionOf } from "./failures.ts";
import { readResumeRecord } from "./resume_record.ts";
import type { JoinRequestContext } from "./service.ts";
import type { JoinSession } from "./session_state.ts";

function notFound(): KeyboundError {
  return new KeyboundError(
    "RESUME_NOT_FOUND",
    "no committed join to resume for this session; join again",
  );
}

/** `resume`: the committed result of the session, exactly once. */
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
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const [record, entry] = await Promise.all([
        readResumeRecord(ctx, session.token),
        readToken(ctx, session.token),
      ]);
      if (!record || record.value.sid !== session.sid) throw notFound();
      const { result } = record.value;
      const now = ctx.now();
      const [boundKey, subjectKey] = await Promise.all([
        parseAuthorizedKey(record.value.bound_public_key),
        parseAuthorizedKey(record.value.subject_key),
      ]);
      await Promise.all([
        verifyResumeProof({
          proof: req.bound_key_proof,
          publicKey: boundKey.key,
          use: "bound",
          clusterName: ctx.clusterName,
          session: req.session,
          now,
        }),
        verifyResumeProof({
          proof: req.subject_key_proof,
          publicKey: subjectKey.key,
          use: "subject",
          clusterName: ctx.clusterName,
          session: req.session,
          now,
        }),
      ]);
      // An admin who reset or rebound the token since has the last word.
      if ((statusOf(entry.token).bound_public_key ?? "") !== record.value.bound_public_key) {
        throw notFound();
      }
      const lock = await findLockInForce(ctx, {
        join_token: session.token,
        user: `bot-${session.bot}`,
        bot_instance_id: result.bot_instance_id,
      }, now);
      if (lock) throw lockedError(lock);
      const r = await ctx.backend.commit({
        checks: [
          { key: record.key, version: record.version },
          { key: resourceKey("token", session.token), version: entry.version },
        ],
        mutations: [
          { type: "delete", key: record.key },
          auditMutation(ctx, {
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
      // Lost to another resume (the record is gone) or to a token write: re-read.
    }
    throw new KeyboundError("CONFLICT", "resuming the join, please try again");
  });
}
