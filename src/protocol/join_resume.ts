/**
 * Resuming a join whose answer was lost (docs/protocol.md §4.9): the request,
 * and the two proofs of possession it carries — one by the key the join
 * bound, one by the certificate key of the certificates it issued. Both
 * sides build and check the proofs here, so the document has one definition.
 *
 * A proof is a compact JWS over `{typ, aud, use, session, resume_id, iat,
 * exp}`: `aud` is the cluster, `use` says which key signs (so one signature
 * cannot stand for the other key), `session` is the hex SHA-256 of the
 * sealed session the client was continuing, `resume_id` the random id the
 * client stored before its first attempt (its claim on the result, reused
 * when it retries), and `iat`/`exp` bound its life.
 *
 * @module
 */
import { CompactSign, compactVerify } from "jose";
import * as z from "zod";
import { algOf } from "../crypto/keys.ts";
import { sha256 } from "../crypto/random.ts";
import { KeyboundError } from "../errors.ts";
import { fromUtf8, toHex, utf8 } from "../util/encoding.ts";
import { answerSchema } from "./answer_schema.ts";
import { JoinResultSchema } from "./messages.ts";

/** Path of the `resume` call. */
export const JOIN_RESUME_PATH = "/v1/join/bound-keypair/resume";

/** `typ` of a resume proof document. */
export const RESUME_PROOF_TYP = "keybound-join-resume";
/** Seconds a proof is valid after `iat`. */
export const RESUME_PROOF_TTL_SECONDS = 60;
/** Clock leeway when checking `iat` and `exp`. */
export const RESUME_PROOF_LEEWAY_SECONDS = 60;

const MAX_SESSION = 16384;
const MAX_PROOF = 8192;

/** `POST /v1/join/bound-keypair/resume` request body. */
export const ResumeRequest = z.strictObject({
  session: z.string().min(1).max(MAX_SESSION),
  resume_id: z.string().regex(/^[0-9a-f]{32,128}$/, "expected 32 to 128 lowercase hex digits"),
  bound_key_proof: z.string().min(1).max(MAX_PROOF),
  subject_key_proof: z.string().min(1).max(MAX_PROOF),
});
/** A `resume` request. */
export type ResumeRequest = z.infer<typeof ResumeRequest>;

/**
 * The answer of a successful resume: the committed result, once. Clients drop
 * fields they do not know (§1.7); the stored record keeps the strict schema.
 */
export const ResumeResponse = answerSchema(z.strictObject({ result: JoinResultSchema }));
/** A resume response. */
export type ResumeResponse = z.infer<typeof ResumeResponse>;

/** Which key a proof is made with. */
export type ResumeKeyUse = "bound" | "subject";

const ProofClaims = z.object({
  typ: z.literal(RESUME_PROOF_TYP),
  aud: z.string(),
  use: z.enum(["bound", "subject"]),
  session: z.string(),
  resume_id: z.string(),
  iat: z.number().int(),
  exp: z.number().int(),
});

/** Hex SHA-256 of a sealed session blob, as proofs name it. */
export async function sessionDigest(session: string): Promise<string> {
  return toHex(await sha256(session));
}

/** Inputs of {@linkcode signResumeProof}. */
export interface ResumeProofInput {
  /** The signing key (bound key or certificate key). */
  privateKey: CryptoKey;
  /** Which one it is. */
  use: ResumeKeyUse;
  /** Cluster name (the `aud` of the challenge the client answered). */
  clusterName: string;
  /** The sealed session being resumed. */
  session: string;
  /** The client's claim on the result. */
  resumeId: string;
  /** Signing time. */
  now: Date;
}

/** Client side: one proof of possession for a resume. */
export async function signResumeProof(o: ResumeProofInput): Promise<string> {
  const iat = Math.floor(o.now.getTime() / 1000);
  const claims: z.infer<typeof ProofClaims> = {
    typ: RESUME_PROOF_TYP,
    aud: o.clusterName,
    use: o.use,
    session: await sessionDigest(o.session),
    resume_id: o.resumeId,
    iat,
    exp: iat + RESUME_PROOF_TTL_SECONDS,
  };
  return await new CompactSign(utf8(JSON.stringify(claims)))
    .setProtectedHeader({ alg: algOf(o.privateKey), typ: RESUME_PROOF_TYP })
    .sign(o.privateKey);
}

/** Inputs of {@linkcode verifyResumeProof}. */
export interface VerifyResumeProof {
  /** The compact JWS sent. */
  proof: string;
  /** The key it must verify under. */
  publicKey: CryptoKey;
  /** Which key that is. */
  use: ResumeKeyUse;
  /** Cluster name. */
  clusterName: string;
  /** The sealed session as sent. */
  session: string;
  /** `resume_id` as sent. */
  resumeId: string;
  /** Verification time. */
  now: Date;
}

function invalidProof(use: ResumeKeyUse, reason: string, cause?: unknown): KeyboundError {
  const field = use === "bound" ? "bound_key_proof" : "subject_key_proof";
  return new KeyboundError("RESUME_PROOF_INVALID", `${field}: ${reason}`, {
    cause,
    details: { path: field },
  });
}

/** Server side: throws `RESUME_PROOF_INVALID` unless the proof is valid now. */
export async function verifyResumeProof(o: VerifyResumeProof): Promise<void> {
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(o.proof, o.publicKey, { algorithms: ["EdDSA", "ES256"] }));
  } catch (cause) {
    throw invalidProof(o.use, "signature did not verify under the expected key", cause);
  }
  let claims: z.infer<typeof ProofClaims>;
  try {
    claims = ProofClaims.parse(JSON.parse(fromUtf8(payload)));
  } catch (cause) {
    throw invalidProof(o.use, "invalid proof document", cause);
  }
  if (
    claims.aud !== o.clusterName || claims.use !== o.use || claims.resume_id !== o.resumeId ||
    claims.session !== await sessionDigest(o.session)
  ) {
    throw invalidProof(o.use, "the proof is for another cluster, key, session or resume id");
  }
  const now = Math.floor(o.now.getTime() / 1000);
  if (claims.exp - claims.iat > RESUME_PROOF_TTL_SECONDS) {
    throw invalidProof(o.use, "the proof lives too long");
  }
  if (now - RESUME_PROOF_LEEWAY_SECONDS > claims.exp) throw invalidProof(o.use, "expired");
  if (now + RESUME_PROOF_LEEWAY_SECONDS < claims.iat) throw invalidProof(o.use, "not valid yet");
}
