/**
 * The client side of the bound-keypair join (docs/protocol.md §4) over plain
 * `fetch`: begin, answer challenges and rotation requests through the key
 * store, and return the credentials. Runtime-agnostic; tbot and tests use it.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import { callApi } from "../protocol/http_client.ts";
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { exportSpki } from "../crypto/keys.ts";
import { sshBlobFromKeyBits, sshKeyType } from "../crypto/ssh_wire.ts";
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
import { challengeHash } from "../protocol/signed_request.ts";
import { toBase64, toPem } from "../util/encoding.ts";
import type { JoinParams } from "./join_types.ts";

export type { JoinParams, JoinResult };

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
  const signed = p.identity && path === JOIN_CONTINUE_PATH;
  return callApi({ baseUrl: p.baseUrl, fetch: p.fetch ?? fetch }, {
    method: "POST",
    path,
    body,
    response: JoinResponse,
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
  const spki = await exportSpki(publicKey);
  const bits = new Uint8Array(AsnConvert.parse(spki, SubjectPublicKeyInfo).subjectPublicKey);
  const type = sshKeyType(publicKey);
  const blob = sshBlobFromKeyBits(type, bits);
  return { tls: toPem("PUBLIC KEY", spki), ssh: `${type} ${toBase64(blob)}` };
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
    const solution = await solveChallenge(key, step.challenge);
    return {
      answer: { type: "challenge_solution", solution },
      ...(p.identity ? { chash: await challengeHash(step.challenge) } : {}),
    };
  }
  let publicKey: string;
  try {
    publicKey = await p.keyStore.generateRotationKey();
  } catch (e) {
    await giveUp(p, session, (e as Error).message);
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
      if (!response.result) throw new KeyboundError("BAD_REQUEST", "the server ended the join");
      return response.result;
    }
    const { answer, chash } = await answerStep(p, response.session, response.step);
    response = await post(p, JOIN_CONTINUE_PATH, { session: response.session, answer }, chash);
  }
  throw new KeyboundError("BAD_REQUEST", `the server asked for more than ${MAX_STEPS} join steps`);
}
