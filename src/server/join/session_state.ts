/**
 * What the join server remembers between `begin` and `continue` calls. It
 * travels sealed in the session blob (see src/protocol/session.ts), never in
 * server memory.
 *
 * @module
 */
import type { SessionEnvelope } from "../../protocol/session.ts";
import type { TokenExpectations } from "./commit.ts";

/** Which of Teleport's cases the join is: A (onboarding), D (refresh) or E (recovery). */
export type JoinFlow = "onboarding" | "refresh" | "recovery";

/**
 * Why a key is challenged: the pre-registered key (case A), the key made in
 * the onboarding rotation (case A), the bound key (cases D and E), or the key
 * made in a requested rotation.
 */
export type ChallengePurpose = "initial" | "onboarding" | "bound" | "rotation";

/** A challenge awaiting its solution. */
export interface PendingChallenge {
  /** Discriminator. */
  readonly type: "challenge";
  /** Why. */
  readonly purpose: ChallengePurpose;
  /** The challenged key, authorized_keys text. */
  readonly public_key: string;
  /** The exact challenge text sent. */
  readonly challenge: string;
}

/** A rotation request awaiting the new public key. */
export interface PendingRotation {
  /** Discriminator. */
  readonly type: "rotation";
  /** The onboarding rotation of case A, or a `rotate_after` rotation. */
  readonly purpose: "onboarding" | "rotation";
}

/**
 * The sealed state of one join. Immutable: each step builds the next state
 * as a new object, so no step changes a session another created.
 */
export interface JoinSession extends SessionEnvelope {
  /** Session id; its used-marker makes the session single-use. */
  readonly sid: string;
  /** Expiry, epoch seconds. */
  readonly exp: number;
  /** Token name. */
  readonly token: string;
  /** Bot name the token binds. */
  readonly bot: string;
  /** The case. */
  readonly flow: JoinFlow;
  /** Effective recovery mode at `begin`, for audit events written before the token is re-read. */
  readonly mode: string;
  /** Refreshes: the certificate presented at `begin`; every `continue` must be signed with it. */
  readonly refresh?: {
    /** Bot instance id from the certificate. */
    readonly instance: string;
    /** Generation from the certificate. */
    readonly generation: number;
    /** Hex SHA-256 of the certificate DER. */
    cert_sha256: string;
  };
  /** The certificate subject key in both encodings, as validated by `begin`. */
  readonly subject: { readonly tls: string; readonly ssh: string };
  /** Requested certificate lifetime. */
  readonly ttl?: number;
  /** `previous_join_state` as sent. */
  readonly join_state?: string;
  /** What `begin` saw of the token. */
  readonly expect: Readonly<TokenExpectations>;
  /** The key the token will be bound to if the join completes now (`""` before any proof). */
  readonly bound_key: string;
  /** The key proven by the first challenge. */
  readonly proven_key?: string;
  /** The bound key before a completed `rotate_after` rotation. */
  readonly rotated_from?: string;
  /** `bot_instance_id` of the verified join state, for the new instance of a recovery. */
  readonly prev_instance?: string;
  /** What the server waits for. */
  readonly pending: PendingChallenge | PendingRotation;
}
