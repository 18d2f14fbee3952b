/**
 * The per-request facts the HTTP layer hands to each join endpoint
 * (`begin`, `continue`, `resume`).
 *
 * @module
 */
import type { VerifiedIdentity } from "../hono_env.ts";

/** Per-request facts the HTTP layer supplies. */
export interface JoinRequestContext {
  /** The verified signed request, or null for an unsigned one. */
  identity: VerifiedIdentity | null;
  /** Peer address. */
  remoteAddr?: string;
}
