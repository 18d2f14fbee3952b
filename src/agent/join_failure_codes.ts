/**
 * What a failed join says about the server's side (docs/protocol.md §4.9):
 * whether it may still have committed, so the bot keeps its pending-join
 * record and resumes, or whether that record is useless.
 *
 * @module
 */

/**
 * Codes of a failed join after which the server may still have committed it:
 * no answer, an answer without a Keybound error body (a proxy), an answer
 * the client cannot use, a crash, a backend that failed mid-commit (the
 * commit's outcome is unknown), or a session the server calls already used
 * (a proxy delivered the solution twice: the first copy may have committed,
 * and the bot only saw the answer to the second).
 */
export const ANSWER_MAY_BE_LOST: ReadonlySet<string> = new Set([
  "CONNECTION_FAILED",
  "BAD_REQUEST",
  "BAD_SERVER_RESPONSE",
  "SESSION_INVALID",
  "INTERNAL",
  "BACKEND_UNAVAILABLE",
]);

/**
 * Answers to a `continue` that carried a solution which say "another copy of
 * this session may have committed": the runtime's HTTP client, a proxy or a
 * balancer delivered the request twice and the bot sees the loser's answer —
 * the used session (`SESSION_INVALID`), or on a backend whose reads are not
 * one snapshot, state that moved under the loser's reads
 * (`UNEXPECTED_BACKEND_STATE`). The join resumes at once (docs/protocol.md
 * §4.9): a committed copy's result comes back, or `RESUME_NOT_FOUND` drops
 * the record and the original error stands.
 */
export const COPY_MAY_HAVE_COMMITTED: ReadonlySet<string> = new Set([
  "SESSION_INVALID",
  "UNEXPECTED_BACKEND_STATE",
]);

/**
 * Resume answers after which the pending record is useless: nothing to
 * resume for this session, or a session the server can no longer open (its
 * session key changed). Anything else (a lock, a proof refused because of
 * the clock, no connection) keeps the record for the next attempt.
 */
export const RESUME_IMPOSSIBLE: ReadonlySet<string> = new Set([
  "RESUME_NOT_FOUND",
  "SESSION_INVALID",
]);
