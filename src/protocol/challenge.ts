/**
 * The bound-keypair challenge (docs/protocol.md §4.4): the server's challenge
 * document, the client's solution (a compact JWS over the exact challenge
 * bytes) and the server's verification of it.
 *
 * @module
 */
import { CompactSign, compactVerify } from "jose";
import { KeyboundError } from "../errors.ts";
import { algOf, keyId } from "../crypto/keys.ts";
import { randomHex, timingSafeEqual } from "../crypto/random.ts";
import { fromUtf8, utf8 } from "../util/encoding.ts";
import { SIGNATURE_ALGORITHMS } from "./signed_request.ts";

/** Seconds a challenge is valid after its issue time. */
export const CHALLENGE_TTL_SECONDS = 60;
/** Seconds `nbf` lies before the issue time. */
export const CHALLENGE_NOT_BEFORE_SKEW_SECONDS = 10;
/** Clock leeway when checking `exp` and `nbf`. */
export const CHALLENGE_LEEWAY_SECONDS = 60;

/** The claims of a challenge document, in the order they are serialised. */
export interface ChallengeClaims {
  /** Cluster name. */
  iss: string;
  /** Key ID of the challenged public key. */
  sub: string;
  /** Cluster name. */
  aud: string;
  /** `iat` + 60. */
  exp: number;
  /** `iat` − 10. */
  nbf: number;
  /** Issue time, integer seconds. */
  iat: number;
  /** 16 random bytes, hex. */
  nonce: string;
}

/** Inputs of {@linkcode createChallenge}. */
export interface CreateChallengeOptions {
  /** Cluster name (`iss` and `aud`). */
  clusterName: string;
  /** The key the client must prove. */
  publicKey: CryptoKey;
  /** Issue time. */
  now: Date;
}

/**
 * Builds a challenge document. The JSON text is what the client signs byte
 * for byte, so the field order is fixed: iss, sub, aud, exp, nbf, iat, nonce.
 */
export async function createChallenge(
  o: CreateChallengeOptions,
): Promise<{ challenge: string; claims: ChallengeClaims }> {
  const iat = Math.floor(o.now.getTime() / 1000);
  const claims: ChallengeClaims = {
    iss: o.clusterName,
    sub: await keyId(o.publicKey),
    aud: o.clusterName,
    exp: iat + CHALLENGE_TTL_SECONDS,
    nbf: iat - CHALLENGE_NOT_BEFORE_SKEW_SECONDS,
    iat,
    nonce: randomHex(16),
  };
  return { challenge: JSON.stringify(claims), claims };
}

/**
 * Client side: signs the challenge with the challenged key. The payload is the
 * challenge text exactly as received; re-serialising it would change bytes
 * the server compares.
 */
export function solveChallenge(privateKey: CryptoKey, challenge: string): Promise<string> {
  return new CompactSign(utf8(challenge))
    .setProtectedHeader({ alg: algOf(privateKey), typ: "JWT" })
    .sign(privateKey);
}

/** Inputs of {@linkcode verifyChallengeSolution}. */
export interface VerifyChallengeOptions {
  /** The compact JWS the client sent. */
  solution: string;
  /** The challenge text the server issued. */
  challenge: string;
  /** The challenged public key. */
  publicKey: CryptoKey;
  /** Cluster name. */
  clusterName: string;
  /** Verification time. */
  now: Date;
}

function failed(reason: string, cause?: unknown): KeyboundError {
  return new KeyboundError("CHALLENGE_FAILED", `validating challenge response: ${reason}`, {
    cause,
  });
}

function parseClaims(bytes: Uint8Array): Record<string, unknown> {
  const v: unknown = JSON.parse(fromUtf8(bytes));
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new KeyboundError("CHALLENGE_FAILED", "the document is not a JSON object");
  }
  return v as Record<string, unknown>;
}

function audienceIncludes(aud: unknown, clusterName: string): boolean {
  if (typeof aud === "string") return aud === clusterName;
  return Array.isArray(aud) && aud.includes(clusterName);
}

/**
 * Server side: verifies a solution against the issued challenge. Throws
 * `CHALLENGE_FAILED` when the signature, any claim, or the nonce is wrong.
 */
export async function verifyChallengeSolution(o: VerifyChallengeOptions): Promise<void> {
  let issued: Record<string, unknown>;
  try {
    issued = parseClaims(utf8(o.challenge));
  } catch (cause) {
    throw failed("issued challenge is unreadable", cause);
  }
  let payload: Uint8Array;
  try {
    const r = await compactVerify(o.solution, o.publicKey, {
      algorithms: [...SIGNATURE_ALGORITHMS],
    });
    payload = r.payload;
  } catch (cause) {
    throw failed("signature did not verify under the challenged key", cause);
  }
  let got: Record<string, unknown>;
  try {
    got = parseClaims(payload);
  } catch (cause) {
    throw failed("invalid challenge document", cause);
  }

  const now = Math.floor(o.now.getTime() / 1000);
  const { exp, nbf, iat } = got;
  if (
    got.iss !== o.clusterName || got.sub !== issued.sub ||
    !audienceIncludes(got.aud, o.clusterName)
  ) {
    throw failed("invalid challenge document");
  }
  if (typeof exp !== "number" || typeof nbf !== "number" || typeof iat !== "number") {
    throw failed("invalid challenge document");
  }
  if (now - CHALLENGE_LEEWAY_SECONDS > exp) throw failed("challenge has expired");
  if (now + CHALLENGE_LEEWAY_SECONDS < nbf || now + CHALLENGE_LEEWAY_SECONDS < iat) {
    throw failed("challenge is not valid yet");
  }
  if (exp !== issued.exp || nbf !== issued.nbf || iat !== issued.iat) {
    throw failed("invalid challenge document");
  }
  const nonceOk = typeof got.nonce === "string" && typeof issued.nonce === "string" &&
    timingSafeEqual(utf8(got.nonce), utf8(issued.nonce));
  if (!nonceOk) throw failed("invalid nonce");
}
