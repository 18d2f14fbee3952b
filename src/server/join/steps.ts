/**
 * The steps the server sends (docs/protocol.md §4.3): each records what it
 * waits for in the session and seals it.
 *
 * @module
 */
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { createChallenge } from "../../protocol/challenge.ts";
import { SIGNATURE_ALGORITHM_SUITE, type StepResponse } from "../../protocol/messages.ts";
import { sealSession } from "../../protocol/session.ts";
import type { ServerContext } from "../context.ts";
import type { ChallengePurpose, JoinSession } from "./session_state.ts";

/** Lifetime of a rotation-request step; challenges expire with their own `exp`. */
const STEP_TTL_SECONDS = 60;

/** A challenge for `publicKeyText`; the session expires with the challenge. */
export async function challengeStep(
  ctx: ServerContext,
  session: JoinSession,
  purpose: ChallengePurpose,
  publicKeyText: string,
): Promise<StepResponse> {
  const key = (await parseAuthorizedKey(publicKeyText)).key;
  const { challenge, claims } = await createChallenge({
    clusterName: ctx.clusterName,
    publicKey: key,
    now: ctx.now(),
  });
  session.pending = { type: "challenge", purpose, public_key: publicKeyText, challenge };
  session.exp = claims.exp;
  return {
    session: await sealSession(ctx.sessionKey, session),
    step: { type: "challenge", public_key: publicKeyText, challenge },
  };
}

/** A rotation request for the cluster's suite. */
export async function rotationStep(
  ctx: ServerContext,
  session: JoinSession,
  purpose: "onboarding" | "rotation",
): Promise<StepResponse> {
  session.pending = { type: "rotation", purpose };
  session.exp = Math.floor(ctx.now().getTime() / 1000) + STEP_TTL_SECONDS;
  return {
    session: await sealSession(ctx.sessionKey, session),
    step: { type: "rotation_request", signature_algorithm_suite: SIGNATURE_ALGORITHM_SUITE },
  };
}
