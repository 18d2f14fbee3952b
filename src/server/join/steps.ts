/**
 * The steps the server sends (docs/protocol.md §4.3): each seals the next
 * session, the given one with what the step waits for.
 *
 * @module
 */
import { createChallenge } from "../../protocol/challenge.ts";
import { SIGNATURE_ALGORITHM_SUITE, type StepResponse } from "../../protocol/messages.ts";
import { sealSession } from "../../protocol/session.ts";
import type { ServerContext } from "../context.ts";
import { challengedKey } from "./challenged_keys.ts";
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
  const key = await challengedKey(publicKeyText);
  const { challenge, claims } = await createChallenge({
    clusterName: ctx.clusterName,
    publicKey: key,
    now: ctx.now(),
  });
  const next: JoinSession = {
    ...session,
    pending: { type: "challenge", purpose, public_key: publicKeyText, challenge },
    exp: claims.exp,
  };
  return {
    session: await sealSession(ctx.sessionKey, next),
    step: { type: "challenge", public_key: publicKeyText, challenge },
  };
}

/** A rotation request for the cluster's suite. */
export async function rotationStep(
  ctx: ServerContext,
  session: JoinSession,
  purpose: "onboarding" | "rotation",
): Promise<StepResponse> {
  const next: JoinSession = {
    ...session,
    pending: { type: "rotation", purpose },
    exp: Math.floor(ctx.now().getTime() / 1000) + STEP_TTL_SECONDS,
  };
  return {
    session: await sealSession(ctx.sessionKey, next),
    step: { type: "rotation_request", signature_algorithm_suite: SIGNATURE_ALGORITHM_SUITE },
  };
}
