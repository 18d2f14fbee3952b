/**
 * The resume record: what the join server keeps of the last committed join
 * of each token so that a client whose answer was lost can complete it
 * (docs/protocol.md §4.9). One record per token, overwritten by every join
 * commit and written in that same commit, claimed by the first resume (for
 * that caller's `resume_id` only), and dropped by the backend's exact expiry
 * when the credentials it holds expire (at least
 * {@linkcode MIN_RESUME_WINDOW_MS} after the commit).
 *
 * @module
 */
import * as z from "zod";
import { JoinResultSchema } from "../../protocol/messages.ts";
import type { Entry, JsonValue, Mutation } from "../../storage/backend.ts";
import type { ServerContext } from "../context.ts";
import { joinResumeKey } from "../keys.ts";

/** Shortest time a committed result stays resumable, whatever the certificate lifetime. */
export const MIN_RESUME_WINDOW_MS = 10 * 60_000;

/** The stored record (validated when read). */
export const ResumeRecord = z.strictObject({
  /** Session id of the join that committed. */
  sid: z.string(),
  /** The token's bound key after the commit: the resume must prove it. */
  bound_public_key: z.string(),
  /** The certificate subject key of the issued certificates: the resume must prove it too. */
  subject_key: z.string(),
  /** RFC 3339 time of the commit. */
  committed_at: z.string(),
  /** The answer the client did not receive. */
  result: JoinResultSchema,
  /** Hex SHA-256 of the `resume_id` of the holder that claimed it (absent until resumed). */
  resumed_by: z.string().optional(),
});
/** A resume record. */
export type ResumeRecord = z.infer<typeof ResumeRecord>;

/** When the record of a join whose certificates expire at `certExpires` expires. */
export function resumeUntil(now: Date, certExpires: Date): number {
  return Math.max(certExpires.getTime(), now.getTime() + MIN_RESUME_WINDOW_MS);
}

/** The expiry a stored record was written with (rewriting it keeps it). */
export function recordExpiry(record: ResumeRecord): number {
  return resumeUntil(new Date(record.committed_at), new Date(record.result.expires));
}

/** The mutation writing a token's record (inside the join commit). */
export function resumeRecordMutation(
  tokenName: string,
  record: ResumeRecord,
  expiresAt: number,
): Mutation {
  return {
    type: "set",
    key: joinResumeKey(tokenName),
    value: record as unknown as JsonValue,
    expiresAt,
  };
}

/** Reads a token's record with its version; null if none, expired, or unreadable. */
export async function readResumeRecord(
  ctx: ServerContext,
  tokenName: string,
): Promise<Entry<ResumeRecord> | null> {
  const entry = await ctx.backend.get(joinResumeKey(tokenName));
  if (!entry) return null;
  const parsed = ResumeRecord.safeParse(entry.value);
  if (!parsed.success) {
    ctx.log.warn("ignoring an unreadable join resume record", { token: tokenName });
    return null;
  }
  return { key: entry.key, value: parsed.data, version: entry.version };
}
