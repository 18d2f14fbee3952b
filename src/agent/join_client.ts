/**
 * The client side of the bound-keypair join (docs/protocol.md §4) over plain
 * `fetch`: begin, answer challenges and rotation requests through the key
 * store, and return the credentials. Runtime-agnostic; tbot and tests use it.
 *
 * @module
 */
import { errorFromWire, KeyboundError } from "../errors.ts";
import { exportSpkiPem } from "../crypto/keys.ts";
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
import { challengeHash, signRequest } from "../protocol/signed_request.ts";
import { formatZodError } from "../util/zod_error.ts";
import type { JoinParams } from "./join_types.ts";

export type { JoinParams, JoinResult };

/** Steps a join may take before the client gives up on a misbehaving server. */
const MAX_STEPS = 8;

function urlOf(baseUrl: string, path: string): URL {
  return new URL(path, baseUrl.endsWith("/") ? baseUrl : baseUrl + "/");
}

async function post(
  p: JoinParams,
  path: string,
  body: BeginRequest | ContinueRequest,
  chash?: string,
): Promise<JoinResponse> {
  const url = urlOf(p.baseUrl, path);
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (p.identity) {
    headers.authorization = await signRequest(p.identity, {
      method: "POST",
      path: url.pathname,
      body: text,
      ...(chash !== undefined ? { chash } : {}),
    });
  }
  const doFetch = p.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { method: "POST", headers, body: text });
  } catch (cause) {
    throw new KeyboundError("CONNECTION_FAILED", `could not reach ${url.origin}`, { cause });
  }
  let json: unknown = null;
  try {
    json = await res.json();
  } catch {
    // A non-JSON body is reported below by status.
  }
  if (!res.ok) throw errorFromWire(res.status, json);
  const parsed = JoinResponse.safeParse(json);
  if (!parsed.success) {
    throw new KeyboundError(
      "BAD_REQUEST",
      `unexpected join response from the server: ${formatZodError(parsed.error)}`,
    );
  }
  return parsed.data;
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
 * Performs one bound-keypair join. With `identity` it is a refresh (every
 * request signed by the current certificate); without, an onboarding or a
 * recovery. Server errors are rethrown as {@linkcode KeyboundError}s with the
 * server's code. The caller makes `result.bound_keypair.public_key` its active
 * key and stores `result.bound_keypair.join_state` verbatim.
 */
export async function joinBoundKeypair(p: JoinParams): Promise<JoinResult> {
  const begin: BeginRequest = {
    token_name: p.tokenName,
    join_method: "bound_keypair",
    system_role: "Bot",
    public_tls_key: await exportSpkiPem(p.subjectKey.publicKey),
    public_ssh_key: await toAuthorizedKey(p.subjectKey.publicKey),
    ttl_seconds: p.ttlSeconds,
    ...(p.initialJoinSecret ? { initial_join_secret: p.initialJoinSecret } : {}),
    ...(p.previousJoinState ? { previous_join_state: p.previousJoinState } : {}),
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
