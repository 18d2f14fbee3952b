/**
 * The client side of the bound-keypair join (docs/protocol.md §4) over plain
 * `fetch`: begin, answer challenges and rotation requests through the key
 * store, and return the credentials; and the resume of a join whose answer
 * was lost (§4.9). Runtime-agnostic; tbot and tests use it.
 *
 * @module
 */
import { BadServerResponseError, errorMessage, KeyboundError } from "../errors.ts";
import type * as z from "zod";
import { callApi } from "../protocol/http_client.ts";
import { exportSpki } from "../crypto/keys.ts";
import { toAuthorizedKey } from "../crypto/ssh_wire.ts";
import { solveChallenge } from "../protocol/challenge.ts";
import {
  type BeginRequest,
  type ContinueRequest,
  JOIN_BEGIN_PATH,
  JOIN_CONTINUE_PATH,
  JoinResponse,
  type JoinResult,
  type JoinStep,
} from "../protocol/messages.ts";
import {
  JOIN_RESUME_PATH,
  type ResumeRequest,
  ResumeResponse,
  signResumeProof,
} from "../protocol/join_resume.ts";
import { challengeHash } from "../protocol/signed_request.ts";
import { toPem } from "../util/encoding.ts";
import type { BoundJoin, BoundResume, JoinParams, ResumeParams } from "./join_types.ts";

export type { JoinParams, JoinResult, ResumeParams };

/** Steps a join may take before the client gives up on a misbehaving server. */
const MAX_STEPS = 8;

/**
 * POSTs a join message. `continue` calls of a refresh are signed with the
 * current certificate (with `chash` when answering a challenge); `begin`
 * carries the certificate in its body instead and is not signed, which saves
 * a signature on the client and a verification on the server.
 */
function post(
  p: JoinParams,
  path: string,
  body: BeginRequest | ContinueRequest,
  chash?: string,
): Promise<JoinResponse> {
  return postJson(p, path, body, JoinResponse, chash);
}

function postJson<T>(
  p: Pick<JoinParams, "baseUrl" | "fetch" | "identity">,
  path: string,
  body: BeginRequest | ContinueRequest | ResumeRequest,
  schema: z.ZodType<T>,
  chash?: string,
): Promise<T> {
  const signed = p.identity && path === JOIN_CONTINUE_PATH;
  return callApi({ baseUrl: p.baseUrl, fetch: p.fetch ?? fetch }, {
    method: "POST",
    path,
    body,
    response: schema,
    what: "join response",
    ...(signed ? { signer: p.identity, ...(chash !== undefined ? { chash } : {}) } : {}),
  });
}

/**
 * `public_tls_key` and `public_ssh_key` of the subject key from a single
 * export: the SSH blob carries the same key bits as the SPKI's BIT STRING,
 * and a P-256 export costs about 0.4 ms in Deno.
 */
async function subjectKeyFields(publicKey: CryptoKey): Promise<{ tls: string; ssh: string }> {
  const [spki, ssh] = await Promise.all([exportSpki(publicKey), toAuthorizedKey(publicKey)]);
  return { tls: toPem("PUBLIC KEY", spki), ssh };
}

/** Tells the server the client gives up; best effort, the session expires anyway. */
async function giveUp(p: JoinParams, session: string, message: string): Promise<void> {
  try {
    await post(p, JOIN_CONTINUE_PATH, {
      session,
      answer: { type: "giving_up", reason: "CHALLENGE_SOLUTION_FAILED", message },
    });
  } catch {
    // The original failure is what the caller needs to see.
  }
}

/** The cluster name a challenge names (its `aud`), for resume proofs. */
function challengeAudience(challenge: string): string {
  try {
    const aud = (JSON.parse(challenge) as { aud?: unknown }).aud;
    if (typeof aud === "string") return aud;
  } catch {
    // Reported below.
  }
  throw new KeyboundError("CHALLENGE_FAILED", "the challenge names no cluster (aud)");
}

async function answerStep(
  p: JoinParams,
  session: string,
  step: JoinStep,
): Promise<{ answer: ContinueRequest["answer"]; chash?: string }> {
  if (step.type === "challenge") {
    const key = await p.keyStore.findPrivateKey(step.public_key);
    if (!key) {
      const msg = `no matching key found for the challenged public key ${step.public_key}`;
      await giveUp(p, session, msg);
      throw new KeyboundError("CHALLENGE_FAILED", msg);
    }
    // A solution is the only answer after which the server may commit: what the client needs
    // to resume must be stored before it leaves. Storing it (a file write in tbot) runs while
    // the solution and the challenge's hash are made. The request is signed only once it is
    // stored: its `iat` must not age by a slow store (the server allows 60 s of skew).
    const stored = p.beforeCommit?.({
      session,
      boundPublicKey: step.public_key.trim(),
      clusterName: challengeAudience(step.challenge),
    });
    stored?.catch(() => {});
    // The challenge's hash (a refresh signs it) is taken while the solution is signed.
    const hashed = p.identity ? challengeHash(step.challenge) : undefined;
    hashed?.catch(() => {});
    let solution: string;
    let chash: string | undefined;
    try {
      solution = await solveChallenge(key, step.challenge);
      chash = await hashed;
    } catch (e) {
      // Settled first, so a caller that deletes the record after a failure never races it.
      await stored?.catch(() => {});
      throw e;
    }
    if (stored) await stored;
    return { answer: { type: "challenge_solution", solution }, ...(chash ? { chash } : {}) };
  }
  let publicKey: string;
  try {
    publicKey = await p.keyStore.generateRotationKey();
  } catch (e) {
    await giveUp(p, session, errorMessage(e));
    throw e;
  }
  return { answer: { type: "rotation_response", public_key: publicKey.trim() } };
}

/**
 * Performs one bound-keypair join. With `identity` it is a refresh (`begin`
 * presents the current certificate, every `continue` is signed with it);
 * without, an onboarding or a recovery. Server errors are rethrown as {@linkcode KeyboundError}s with the
 * server's code. The caller makes `result.bound_keypair.public_key` its active
 * key and stores `result.bound_keypair.join_state` verbatim.
 *
 * @example First join with a registration secret
 * ```ts ignore
 * import { generateKeyPair, joinBoundKeypair, type BoundKeyStore } from "@keybound/keybound";
 *
 * const bound = await generateKeyPair("EdDSA");
 * const keyStore: BoundKeyStore = {
 *   findPrivateKey: () => Promise.resolve(bound.privateKey),
 *   generateRotationKey: () => Promise.reject(new Error("rotation not supported here")),
 * };
 * const result = await joinBoundKeypair({
 *   baseUrl: "https://auth.example.com:3025",
 *   tokenName: "my-bot",
 *   initialJoinSecret: "secret from tctl bots add",
 *   subjectKey: await generateKeyPair("EdDSA"),
 *   ttlSeconds: 3600,
 *   keyStore,
 * });
 * console.log(result.bot_instance_id, result.expires);
 * ```
 */
export async function joinBoundKeypair(p: JoinParams): Promise<JoinResult> {
  const subject = await subjectKeyFields(p.subjectKey.publicKey);
  const begin: BeginRequest = {
    token_name: p.tokenName,
    join_method: "bound_keypair",
    system_role: "Bot",
    public_tls_key: subject.tls,
    public_ssh_key: subject.ssh,
    ttl_seconds: p.ttlSeconds,
    ...(p.initialJoinSecret ? { initial_join_secret: p.initialJoinSecret } : {}),
    ...(p.previousJoinState ? { previous_join_state: p.previousJoinState } : {}),
    ...(p.identity ? { certificate: toPem("CERTIFICATE", p.identity.certDer) } : {}),
  };
  let response = await post(p, JOIN_BEGIN_PATH, begin);
  for (let i = 0; i < MAX_STEPS; i++) {
    if ("result" in response) {
      if (!response.result) throw new BadServerResponseError("the server ended the join");
      return response.result;
    }
    const { answer, chash } = await answerStep(p, response.session, response.step);
    response = await post(p, JOIN_CONTINUE_PATH, { session: response.session, answer }, chash);
  }
  throw new BadServerResponseError(`the server asked for more than ${MAX_STEPS} join steps`);
}

/**
 * Asks the server for the committed result of a join whose answer was lost
 * (docs/protocol.md §4.9), proving the bound key and the certificate key.
 * `RESUME_NOT_FOUND` means the server has no committed result for that
 * session: the caller discards its pending record and joins normally.
 */
export async function resumeBoundKeypair(p: ResumeParams): Promise<JoinResult> {
  const common = {
    clusterName: p.clusterName,
    session: p.session,
    resumeId: p.resumeId,
    now: p.now ?? new Date(),
  };
  const [bound, subject] = await Promise.all([
    signResumeProof({ ...common, privateKey: p.boundKey, use: "bound" }),
    signResumeProof({ ...common, privateKey: p.subjectKey, use: "subject" }),
  ]);
  const answer = await postJson(p, JOIN_RESUME_PATH, {
    session: p.session,
    resume_id: p.resumeId,
    bound_key_proof: bound,
    subject_key_proof: subject,
  }, ResumeResponse);
  return answer.result;
}

/** The join and the resume, bound to one server and transport. */
export function joinTransport(
  baseUrl: string,
  fetchFn?: typeof fetch,
): { join: BoundJoin; resume: BoundResume } {
  const server = { baseUrl, ...(fetchFn ? { fetch: fetchFn } : {}) };
  return {
    join: (p) => joinBoundKeypair({ ...p, ...server }),
    resume: (p) => resumeBoundKeypair({ ...p, ...server }),
  };
}
