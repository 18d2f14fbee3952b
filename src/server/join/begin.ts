/**
 * `begin` of a bound-keypair join (docs/protocol.md §4.6; Teleport's cases
 * A–E): reads the token and, for a refresh, checks the presented certificate,
 * decides the case (onboarding, refresh, recovery) and sends the first step —
 * a challenge for the bound or pre-registered key, or the onboarding rotation
 * request once a registration secret is checked.
 *
 * @module
 */
import type { SubjectIdentity } from "../../protocol/subject.ts";
import { AccessDeniedError, BadParameterError, KeyboundError } from "../../errors.ts";
import { randomHex, timingSafeEqualString } from "../../crypto/random.ts";
import type { BeginRequest, StepResponse } from "../../protocol/messages.ts";
import { certificatesFromPem } from "../../pki/mod.ts";
import type { Lock, Token } from "../../resources/schemas.ts";
import type { ServerContext } from "../context.ts";
import { assertNotLocked } from "../request_auth.ts";
import { verifyClientCertificate } from "../verified_certs.ts";
import { storedLocks } from "../locks.ts";
import { expectationsOf, readToken, statusOf } from "./commit.ts";
import { recoveryEvent } from "./events.ts";
import { auditingFailures, JoinFailure } from "./failures.ts";
import { joinsRemaining, modeOf } from "./policy.ts";
import type { JoinRequestContext } from "./request_context.ts";
import type { JoinSession } from "./session_state.ts";
import { challengeStep, rotationStep } from "./steps.ts";
import { parseSubjectKey } from "./subject_key.ts";
import { allInOrder } from "../../util/all_in_order.ts";

/** The certificate a refresh `begin` presents, checked against the user CA. */
interface RefreshCertificate {
  /** The identity its subject names. */
  identity: SubjectIdentity;
  /** Hex SHA-256 of its DER. */
  sha256: string;
}

/**
 * The certificate of a refresh: the `certificate` field (docs/protocol.md
 * §4.1). Null for an onboarding or recovery.
 */
async function refreshCertificate(
  ctx: ServerContext,
  req: BeginRequest,
  locks: Promise<Lock[]> | undefined,
): Promise<RefreshCertificate | null> {
  if (req.certificate === undefined) return null;
  let blocks: Uint8Array[];
  try {
    blocks = certificatesFromPem(req.certificate);
  } catch (cause) {
    // certificatesFromPem throws only BadParameterError, whose message names the problem.
    throw new BadParameterError(`certificate: ${(cause as BadParameterError).message}`, {
      cause,
      details: { path: "certificate" },
    });
  }
  if (blocks.length !== 1) {
    throw new BadParameterError("certificate: expected exactly one CERTIFICATE block", {
      details: { path: "certificate" },
    });
  }
  const der = blocks[0];
  const now = ctx.now();
  const verified = await verifyClientCertificate(ctx, der, now, "certificate");
  const { username, botInstanceId } = verified.identity;
  // Join-token locks wait until the bound key is proven (docs/protocol.md §4.6).
  await assertNotLocked(ctx, { user: username, bot_instance_id: botInstanceId }, now, locks);
  return { identity: verified.identity, sha256: verified.sha256 };
}

/** The refresh facts of the certificate a refresh `begin` presented. */
function refreshOf(
  presented: RefreshCertificate,
  token: Token,
): NonNullable<JoinSession["refresh"]> {
  const identity = presented.identity;
  if (identity.usage !== undefined) {
    throw new AccessDeniedError(
      `a certificate with usage "${identity.usage}" is not an identity and cannot refresh a join`,
    );
  }
  if (identity.botName === undefined || identity.botInstanceId === undefined) {
    throw new AccessDeniedError("only bot certificates can refresh a join");
  }
  if (identity.botName !== token.spec.bot_name) {
    throw new AccessDeniedError(
      `the certificate belongs to bot "${identity.botName}", not to the token's bot "${token.spec.bot_name}"`,
    );
  }
  if (!identity.generation) {
    throw new AccessDeniedError("a current identity generation must be provided");
  }
  return {
    instance: identity.botInstanceId,
    generation: identity.generation,
    cert_sha256: presented.sha256,
  };
}

/** Case A with a registration secret: the secret must be sent, in time, and equal. */
async function checkRegistrationSecret(
  ctx: ServerContext,
  token: Token,
  sent: string | undefined,
): Promise<string | null> {
  const stored = statusOf(token).registration_secret ?? "";
  if (!sent) return "no registration secret was provided";
  const deadline = token.spec.bound_keypair.onboarding.must_register_before;
  if (deadline && ctx.now().getTime() > Date.parse(deadline)) {
    return "the registration deadline (must_register_before) has passed";
  }
  if (!(await timingSafeEqualString(sent, stored))) return "registration secret comparison failed";
  return null;
}

/** `POST /v1/join/bound-keypair/begin`: decides the case and returns the first step. */
export function beginJoin(
  ctx: ServerContext,
  req: BeginRequest,
  rc: JoinRequestContext,
): Promise<StepResponse> {
  const where = { tokenName: req.token_name, remoteAddr: rc.remoteAddr };
  return auditingFailures(ctx, where, async () => {
    if (rc.identity) {
      // Proof of possession comes with every signed `continue`; a signed `begin`
      // (clients of protocol 0.1.0) would otherwise silently become a recovery.
      throw new KeyboundError(
        "BAD_REQUEST",
        "begin is not signed: a refresh presents its certificate in the certificate field",
      );
    }
    // Independent checks and reads, run together: the subject keys, the
    // token, and (refresh) the presented certificate with its locks. Failures
    // are reported in this order whatever finished first. A refresh's lock
    // set is read from the start, so its marker read goes to the backend with
    // the token's (one batch on Deno KV).
    const locks = req.certificate === undefined ? undefined : storedLocks(ctx);
    locks?.catch(() => {});
    const [keys, { token }, presented] = await allInOrder(
      [
        parseSubjectKey(req.public_tls_key, req.public_ssh_key),
        readToken(ctx, req.token_name),
        refreshCertificate(ctx, req, locks),
      ] as const,
    );
    if (req.join_method !== undefined && req.join_method !== token.spec.join_method) {
      throw new BadParameterError(
        `client requested join method "${req.join_method}", the token only supports "${token.spec.join_method}"`,
        { details: { path: "join_method" } },
      );
    }
    if (req.system_role !== undefined && req.system_role !== "Bot") {
      throw new AccessDeniedError(
        `can not join the cluster, the token does not allow role "${req.system_role}"`,
      );
    }
    const refresh = presented ? refreshOf(presented, token) : undefined;
    const status = statusOf(token);
    const hasBoundKey = !!status.bound_public_key;
    const hasBoundInstance = !!status.bound_bot_instance_id;
    const flow = !hasBoundKey ? "onboarding" : refresh ? "refresh" : "recovery";
    const session: JoinSession = {
      sid: randomHex(16),
      exp: 0,
      token: req.token_name,
      bot: token.spec.bot_name,
      flow,
      mode: modeOf(token),
      ...(refresh ? { refresh } : {}),
      subject: { tls: keys.tlsPem, ssh: keys.ssh },
      ...(req.ttl_seconds !== undefined ? { ttl: req.ttl_seconds } : {}),
      ...(req.previous_join_state ? { join_state: req.previous_join_state } : {}),
      expect: await expectationsOf(token),
      bound_key: "",
      // Replaced by the first step below; a session is only ever sealed by a step.
      pending: { type: "rotation", purpose: "onboarding" },
    };

    if (!hasBoundKey && refresh) {
      throw new KeyboundError(
        "ONBOARDING_WITH_CREDENTIALS",
        "cannot perform first bound keypair join with existing credentials",
      );
    }
    if (hasBoundKey && !hasBoundInstance) {
      throw new KeyboundError(
        "TOKEN_STATE_CORRUPT",
        "bad backend state, please recreate the join token",
      );
    }
    if (flow !== "onboarding") {
      return await challengeStep(ctx, session, "bound", status.bound_public_key!.trim());
    }

    // Case A: onboarding.
    const mode = modeOf(token);
    if (mode === "standard" && !joinsRemaining(token)) {
      throw new KeyboundError("NO_RECOVERIES_REMAINING", "no recovery attempts remaining");
    }
    const initialKey = token.spec.bound_keypair.onboarding.initial_public_key?.trim();
    if (initialKey) return await challengeStep(ctx, session, "initial", initialKey);
    if (status.registration_secret) {
      const problem = await checkRegistrationSecret(ctx, token, req.initial_join_secret);
      if (problem !== null) {
        throw new JoinFailure(
          new KeyboundError(
            "REGISTRATION_SECRET_INVALID",
            "a valid registration secret is required",
          ),
          [recoveryEvent(session, where, { error: problem, publicKey: "", count: 0, mode })],
        );
      }
      return await rotationStep(ctx, session, "onboarding");
    }
    throw new BadParameterError(
      "either an initial public key or registration secret is required",
    );
  });
}
