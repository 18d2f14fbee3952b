/**
 * The join-state document (docs/protocol.md §4.7): a JWT signed by the
 * cluster's `bound_keypair` CA, handed to the client after every successful
 * join and presented back on the next one. It lets the server notice a second
 * holder of the bound key: after one of them recovers, the other's document
 * is stale.
 *
 * @module
 */
import { decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import type { KeyPair } from "../crypto/keys.ts";
import { errorMessage, KeyboundError } from "../errors.ts";

/** Leeway for `nbf` and `iat`. */
export const JOIN_STATE_LEEWAY_SECONDS = 60;

/** A JWT signing key of the bound_keypair CA. */
export interface JoinStateKey {
  /** Key ID (base64url SHA-256 of the SPKI). */
  kid: string;
  /** The key pair. */
  keyPair: KeyPair;
}

/** A key that verifies join states: its id and public half. */
export interface JoinStateVerificationKey {
  /** Key ID (base64url SHA-256 of the SPKI). */
  kid: string;
  /** The public key and its algorithm. */
  keyPair: Pick<KeyPair, "publicKey" | "alg">;
}

/** The Keybound-specific claims of a join state. */
export interface JoinStateClaims {
  /** The token's bound bot instance after the join. */
  bot_instance_id: string;
  /** The token's recovery count after the join. */
  recovery_sequence: number;
  /** `spec.recovery.limit`, informational. */
  recovery_limit: number;
  /** `spec.recovery.mode` as written, informational. */
  recovery_mode: string;
}

/** Inputs of {@linkcode issueJoinState}. */
export interface IssueJoinStateOptions {
  /** Cluster name (`iss`, `aud`). */
  clusterName: string;
  /** Bot name (`sub`). */
  botName: string;
  /** The CA's active JWT key. */
  key: JoinStateKey;
  /** Issue time. */
  now: Date;
  /** State after the join. */
  claims: JoinStateClaims;
}

/** Signs a join state. It has no `exp`: join states are replaced, never expire. */
export function issueJoinState(o: IssueJoinStateOptions): Promise<string> {
  const iat = Math.floor(o.now.getTime() / 1000);
  return new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg: o.key.keyPair.alg, typ: "JWT", kid: o.key.kid })
    .setIssuer(o.clusterName)
    .setAudience(o.clusterName)
    .setSubject(o.botName)
    .setNotBefore(iat - 10)
    .setIssuedAt(iat)
    .sign(o.key.keyPair.privateKey);
}

/**
 * Why a join state was refused. Its message goes to logs and audit events
 * only; clients get the generic "join state verification failed".
 */
export class JoinStateVerificationError extends KeyboundError {
  /** @param message what did not hold */
  constructor(message: string) {
    super("JOIN_STATE_INVALID", message);
    this.name = "JoinStateVerificationError";
  }
}

/** Inputs of {@linkcode verifyJoinState}. */
export interface VerifyJoinStateOptions {
  /** The compact JWT the client sent. */
  joinState: string;
  /** Cluster name. */
  clusterName: string;
  /** Bot name the token binds. */
  botName: string;
  /** The CA's trusted JWT keys (public halves suffice); the header's `kid` selects one. */
  trustedKeys: readonly JoinStateVerificationKey[];
  /** Verification time. */
  now: Date;
  /** The token's current state, which the document must match. */
  expect: { recoverySequence: number; botInstanceId: string };
}

/** The `kid` of a join state's header, `""` when it has none or does not decode. */
export function joinStateKid(joinState: string): string {
  try {
    const kid = decodeProtectedHeader(joinState).kid;
    return typeof kid === "string" ? kid : "";
  } catch {
    return "";
  }
}

/**
 * Verifies a join state; returns its claims or throws
 * {@linkcode JoinStateVerificationError}.
 */
export async function verifyJoinState(o: VerifyJoinStateOptions): Promise<JoinStateClaims> {
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(o.joinState).kid;
  } catch {
    throw new JoinStateVerificationError("parsing serialized join state: invalid JWT header");
  }
  if (typeof kid !== "string" || kid === "") {
    throw new JoinStateVerificationError("required key ID is missing from JWT header");
  }
  const key = o.trustedKeys.find((k) => k.kid === kid);
  if (!key) throw new JoinStateVerificationError("join state could not be verified: unknown kid");

  let payload: Record<string, unknown>;
  try {
    const r = await jwtVerify(o.joinState, key.keyPair.publicKey, {
      algorithms: [key.keyPair.alg],
      issuer: o.clusterName,
      audience: o.clusterName,
      subject: o.botName,
      clockTolerance: JOIN_STATE_LEEWAY_SECONDS,
      currentDate: o.now,
      requiredClaims: ["iat", "nbf"],
    });
    payload = r.payload;
  } catch (e) {
    throw new JoinStateVerificationError(
      `join state could not be verified: ${errorMessage(e)}`,
    );
  }
  const now = Math.floor(o.now.getTime() / 1000);
  if ((payload.iat as number) > now + JOIN_STATE_LEEWAY_SECONDS) {
    throw new JoinStateVerificationError("join state is issued in the future");
  }
  const problems: string[] = [];
  if (payload.recovery_sequence !== o.expect.recoverySequence) {
    problems.push("recovery counter mismatch");
  }
  if (payload.bot_instance_id !== o.expect.botInstanceId) problems.push("bot instance mismatch");
  if (problems.length > 0) throw new JoinStateVerificationError(problems.join("; "));
  return {
    bot_instance_id: payload.bot_instance_id as string,
    recovery_sequence: payload.recovery_sequence as number,
    recovery_limit: typeof payload.recovery_limit === "number" ? payload.recovery_limit : 0,
    recovery_mode: typeof payload.recovery_mode === "string" ? payload.recovery_mode : "",
  };
}
