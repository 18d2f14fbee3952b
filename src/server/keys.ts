/**
 * The backend key layout of the auth service, in one place so every module
 * (and every backend) agrees on it.
 *
 * @module
 */
import type { Key } from "../storage/backend.ts";
import type { Kind } from "../resources/schemas.ts";

/** Cluster identity: `{cluster_name, created_at}`. */
export const CLUSTER_META: Key = ["cluster", "meta"];
/** A certificate authority record by type. */
export function caKey(type: "user" | "host" | "bound_keypair" | "jwt" | "spiffe"): Key {
  return ["cluster", "ca", type];
}
/** Prefix of every certificate authority record. */
export const CA_PREFIX: Key = ["cluster", "ca"];
/**
 * Changes version with every CA write (creation, each rotation phase): an
 * instance re-reads its CAs when it changed, and a join commit requires it
 * unchanged since the CAs it signed with were read (src/server/rotation/).
 */
export const CA_REVISION_KEY: Key = ["cluster", "ca_revision"];
/** The AES-GCM key that seals join sessions (see docs/protocol.md). */
export const JOIN_SESSION_KEY: Key = ["cluster", "join_session_key"];
/** A resource; bot instances use two name parts (`bot`, `instance id`). */
export function resourceKey(kind: Kind, ...name: string[]): Key {
  return ["resources", kind, ...name];
}
/** Prefix of all resources of a kind. */
export function resourcePrefix(kind: Kind, ...name: string[]): Key {
  return ["resources", kind, ...name];
}
/**
 * Changes version with every lock write (create, overwrite, delete): lock
 * checks read it instead of listing every lock (see src/server/locks.ts).
 */
export const LOCKS_CHANGED_KEY: Key = ["locks_changed"];
/** Marker that a join session was committed (single use). */
export function usedSessionKey(sessionId: string): Key {
  return ["join_sessions_used", sessionId];
}
/**
 * The last committed join of a token, kept for a resume (one per token,
 * expiring with the credentials it holds; see src/server/join/resume.ts).
 */
export function joinResumeKey(tokenName: string): Key {
  return ["join_resume", tokenName];
}
/** Marker that a signed request's `jti` was seen (replay protection). */
export function seenRequestKey(jti: string): Key {
  return ["request_jti", jti];
}
/** Prefix of audit events; keys sort by time. */
export const AUDIT_PREFIX: Key = ["audit"];
/** An audit event key: ISO time then a random suffix so keys sort by time and never collide. */
export function auditKey(time: Date, id: string): Key {
  return ["audit", time.toISOString(), id];
}
/** Prefix of the audit events of one type (an index: see src/server/audit.ts). */
export function auditTypePrefix(type: string): Key {
  return ["audit_type", type];
}
/** An audit event's entry in the by-type index. */
export function auditTypeKey(type: string, time: string, id: string): Key {
  return ["audit_type", type, time, id];
}
/** How many failed-join rows a source address opened in a minute. */
export function joinFailureSourceKey(minute: string, sourceHash: string): Key {
  return ["audit_join_failure_sources", minute, sourceHash];
}
/** An unused console enrollment code, by its id (see src/server/web/enrollment.ts). */
export function webEnrollmentKey(id: string): Key {
  return ["web_enrollments", id];
}
/** Prefix of enrolled browsers. */
export const WEB_BROWSERS_PREFIX: Key = ["web_browsers"];
/** An enrolled browser, by its id: checked on every request its certificate signs. */
export function webBrowserKey(id: string): Key {
  return ["web_browsers", id];
}
