/**
 * How a bot's {@linkcode IdentityService} is set up: its options, and the
 * certificate key algorithm a bot's outputs call for.
 *
 * @module
 */
import type { KeyAlgorithm } from "../crypto/keys.ts";
import type { Logger } from "../util/log.ts";
import type { ClientState } from "./client_state.ts";
import type { Clock } from "./clock.ts";
import type { BoundJoin, BoundResume } from "./join_types.ts";
import type { TbotMetrics } from "./metrics.ts";
import type { AgentStorage } from "./storage.ts";

/** Options of {@linkcode IdentityService}. */
export interface IdentityServiceOptions {
  /** The bot's storage (already locked). */
  storage: AgentStorage;
  /** Bound keys and join state. */
  clientState: ClientState;
  /** Join token name. */
  tokenName: string;
  /** Requested certificate lifetime, milliseconds. */
  credentialTtlMs: number;
  /** Registration secret, if configured. */
  registrationSecret?: string;
  /** Performs a join. */
  join: BoundJoin;
  /** Resumes a join whose answer was lost. */
  resume: BoundResume;
  /** Time source. */
  clock: Clock;
  /** Logger. */
  log: Logger;
  /** Metrics, for the expiry gauge. */
  metrics?: TbotMetrics;
  /**
   * Told the host CAs of each stored trust bundle (after they are written to
   * `host_ca.pem`), so the connection to the auth service trusts them from
   * the next request on (trust/host_trust.ts).
   */
  onHostCas?: (pems: string[]) => void;
  /**
   * Algorithm of the certificate key each join generates (default P-256).
   * Ed25519 makes a refresh cheaper on both sides (the signed `continue` is
   * an Ed25519 signature and verification instead of P-256's) where the
   * bot's certificate is used only for Keybound's own signed requests; see
   * {@linkcode certificateKeyAlgorithmFor}. The stored identity may be of
   * either algorithm whatever this says: it signs the join that replaces it.
   */
  certificateKeyAlgorithm?: KeyAlgorithm;
}

/**
 * The certificate key algorithm for a bot with `outputs`: P-256 when an
 * `identity` output copies the bot's own key and certificates (tsh, tctl and
 * OpenSSH read them, and third-party TLS stacks get P-256 by default),
 * Ed25519 otherwise, when only Keybound's signed requests use them.
 */
export function certificateKeyAlgorithmFor(
  outputs: readonly { type: string; credential_ttl?: number }[],
): KeyAlgorithm {
  return outputs.some((o) => o.type === "identity" && o.credential_ttl === undefined)
    ? "ES256"
    : "EdDSA";
}
