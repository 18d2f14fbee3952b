/**
 * The bound-keypair join state machine (docs/protocol.md §4.6; Teleport's
 * cases A–E). `beginJoin` decides the case and sends the first step;
 * `continueJoin` checks each answer, runs the checks that must follow proof of
 * possession (lock, join state, instance), asks for a rotation when one is
 * due, and finally issues credentials and commits everything at once.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { challengeHash } from "../../protocol/signed_request.ts";
import { AccessDeniedError, BadParameterError, inContext, KeyboundError } from "../../errors.ts";
import { publicKeysEqual } from "../../crypto/keys.ts";
import { randomHex, timingSafeEqualString } from "../../crypto/random.ts";
import { parseAuthorizedKey, toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { verifyChallengeSolution } from "../../protocol/challenge.ts";
import {
  joinStateKid,
  JoinStateVerificationError,
  verifyJoinState,
} from "../../protocol/join_state.ts";
import type {
  BeginRequest,
  ContinueRequest,
  JoinResponse,
  StepResponse,
} from "../../protocol/messages.ts";
import { certificatesFromPem, subjectKeyIdentifier } from "../../pki/mod.ts";
import { fromPem } from "../../util/encoding.ts";
import { openSession } from "../../protocol/session.ts";
import type { SubjectIdentity } from "../../protocol/subject.ts";
import type { Bot, BotInstance, Lock, Token } from "../../resources/schemas.ts";
import type { Entry } from "../../storage/backend.ts";
import { readBotInstance } from "../bot_instances.ts";
import type { ServerContext } from "../context.ts";
import type { VerifiedIdentity } from "../hono_env.ts";
import { usedSessionKey } from "../keys.ts";
import { assertNotLocked } from "../request_auth.ts";
import { verifyClientCertificate } from "../verified_certs.ts";
import {
  createLockMutations,
  findLockInForce,
  joinStateLockMessage,
  lockedError,
  lockSnapshot,
  storedLocks,
} from "../locks.ts";
import { joinStateKeys } from "../rotation/join_state_keys.ts";
import { findBot } from "./certs.ts";
import {
  expectationsHold,
  expectationsOf,
  readToken,
  sessionUsed,
  statusOf,
  type TokenEntry,
  unexpectedBackendState,
} from "./commit.ts";
import { challengedKey } from "./challenged_keys.ts";
import { recoveryEvent, rotationEvent } from "./events.ts";
import {
  auditingFailures,
  connectionOf,
  type FailureContext,
  JoinFailure,
  lockingFailure,
  StaleReads,
} from "./failures.ts";
import { finish, type FinishReads, readChecks } from "./finish.ts";
import { joinsRemaining, modeOf, rotationDue } from "./policy.ts";
import type { JoinSession, PendingChallenge } from "./session_state.ts";
import { challengeStep, rotationStep } from "./steps.ts";
import { parseSubjectKey } from "./subject_key.ts";
import { allInOrder } from "../../util/all_in_order.ts";

/** Per-request facts the HTTP layer supplies. */
export interface JoinRequestContext {
  /** The verified signed request, or null for an unsigned one. */
  identity: VerifiedIdentity | null;
  /** Peer address. */
  remoteAddr?: string;
}

/** Parses an authorized_keys field; `BAD_PARAMETER` naming `path` if it is not one. */
async function parseKeyField(text: string, path: string): Promise<CryptoKey> {
  try {
    return (await parseAuthorizedKey(text)).key;
  } catch (e) {
    throw inContext(path, e, "BAD_PARAMETER", { path });
  }
}

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

/** Refreshes must sign every `continue` with the certificate `begin` presented. */
async function checkRefreshBinding(
  session: JoinSession,
  identity: VerifiedIdentity | null,
  answer: ContinueRequest["answer"],
  expectedChash: Promise<string>,
): Promise<void> {
  if (!session.refresh) {
    if (identity) {
      throw new KeyboundError(
        "UNAUTHENTICATED",
        "this join was begun without a certificate; its continue requests must not be signed",
      );
    }
    return;
  }
  if (!identity) {
    throw new KeyboundError(
      "UNAUTHENTICATED",
      "a refresh must sign every continue request with its certificate",
    );
  }
  if (identity.certSha256 !== session.refresh.cert_sha256) {
    throw new KeyboundError(
      "UNAUTHENTICATED",
      "continue request is signed by another certificate than the one that began the join",
    );
  }
  if (answer.type === "challenge_solution" && session.pending.type === "challenge") {
    if (identity.chash !== await expectedChash) {
      throw new KeyboundError(
        "UNAUTHENTICATED",
        "signed request chash does not match the challenge being answered",
      );
    }
  }
}

function unexpectedAnswer(got: string, session: JoinSession): KeyboundError {
  const wanted = session.pending.type === "challenge" ? "challenge_solution" : "rotation_response";
  return new KeyboundError("BAD_REQUEST", `unexpected answer "${got}": expected "${wanted}"`);
}

/** Opens the sealed session of a `continue` (`SESSION_INVALID` if forged, malformed or expired). */
export function openJoinSession(ctx: ServerContext, blob: string): Promise<JoinSession> {
  return openSession<JoinSession>(ctx.sessionKey, blob, ctx.now());
}

/** Verifies a challenge solution under the challenged key. */
async function verifySolution(
  ctx: ServerContext,
  pending: PendingChallenge,
  solution: string,
): Promise<void> {
  await verifyChallengeSolution({
    solution,
    challenge: pending.challenge,
    publicKey: await challengedKey(pending.public_key),
    clusterName: ctx.clusterName,
    now: ctx.now(),
  });
}

/** `p` with a handler attached, so a rejection awaited later is not reported as unhandled first. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * The work of a `continue` that depends only on its sealed session, begun
 * as soon as the session opens: while the route checks the request's
 * signature, the solution's signature is verified, the `chash` the request
 * must carry is computed and the step's reads go to the backend (each waits
 * on another thread or on storage). Nothing here is looked at before the
 * request's signature and binding are checked, and nothing is written.
 */
export interface PreparedContinue {
  /** The opened session (`SESSION_INVALID` if forged, malformed or expired). */
  session: Promise<JoinSession>;
  /**
   * Once the session is open: the solution's verification, the first round
   * of the step's reads and the join state's verification against what
   * `begin` saw of the token (each wrapped, so awaiting this does not wait
   * for them), or null unless the answer solves a pending challenge.
   */
  started: Promise<
    { solved: Promise<void>; reads: Promise<StepReads>; joinState: EarlyJoinState | null } | null
  >;
  /** base64url SHA-256 of the pending challenge (refreshes answering one), else "". */
  chash: Promise<string>;
}

/** Opens the session of `req` and starts what depends only on it ({@linkcode PreparedContinue}). */
export function prepareContinue(ctx: ServerContext, req: ContinueRequest): PreparedContinue {
  const session = started(openJoinSession(ctx, req.session));
  const answer = req.answer;
  const solution = (s: JoinSession) =>
    answer.type === "challenge_solution" && s.pending.type === "challenge" ? s.pending : null;
  return {
    session,
    started: started(session.then((s) => {
      const pending = solution(s);
      if (!pending || answer.type !== "challenge_solution") return null;
      // The certificate this answer may lead to needs its key's identifier.
      started(subjectKeyIdentifier(fromPem("PUBLIC KEY", s.subject.tls)));
      return {
        solved: started(verifySolution(ctx, pending, answer.solution)),
        reads: started(readStep(ctx, s)),
        joinState: earlyJoinState(ctx, s),
      };
    })),
    chash: started(session.then((s) => {
      const pending = solution(s);
      return pending && s.refresh ? challengeHash(pending.challenge) : "";
    })),
  };
}

/**
 * `POST /v1/join/bound-keypair/continue`: checks an answer and returns the
 * next step or the result. `prepared` is the work already begun on its
 * session ({@linkcode prepareContinue}), so the route can overlap it with the
 * signature check; without it, it is begun here.
 */
export async function continueJoin(
  ctx: ServerContext,
  req: ContinueRequest,
  rc: JoinRequestContext,
  prepared: PreparedContinue = prepareContinue(ctx, req),
): Promise<JoinResponse> {
  const unknown = { tokenName: "", remoteAddr: rc.remoteAddr };
  const session = await auditingFailures(ctx, unknown, () => prepared.session);
  const where = { tokenName: session.token, remoteAddr: rc.remoteAddr };
  return auditingFailures(ctx, where, async () => {
    const answer = req.answer;
    // The solution's outcome is looked at only after the request's binding.
    const begun = await prepared.started;
    await checkRefreshBinding(session, rc.identity, answer, prepared.chash);
    switch (answer.type) {
      case "giving_up":
        ctx.log.info("join client gave up", {
          token: session.token,
          reason: answer.reason,
          message: answer.message ?? "",
        });
        return { result: null };
      case "rotation_response":
        return await answerRotation(ctx, session, answer.public_key, where);
      case "challenge_solution":
        return await answerChallenge(ctx, session, begun, rc, where);
    }
  });
}

async function answerRotation(
  ctx: ServerContext,
  session: JoinSession,
  publicKeyText: string,
  where: FailureContext,
): Promise<StepResponse> {
  if (session.pending.type !== "rotation") throw unexpectedAnswer("rotation_response", session);
  const purpose = session.pending.purpose;
  const key = await parseKeyField(publicKeyText, "answer.public_key");
  const canonical = await toAuthorizedKey(key);
  if (purpose === "rotation") {
    const current = await challengedKey(session.bound_key);
    if (await publicKeysEqual(current, key)) {
      const msg = "public key may not be reused after rotation";
      throw new JoinFailure(new BadParameterError(msg), [
        rotationEvent(session, where, { previous: session.bound_key, next: canonical, error: msg }),
      ]);
    }
  }
  return await challengeStep(ctx, session, purpose, canonical);
}

async function answerChallenge(
  ctx: ServerContext,
  session: JoinSession,
  begun: Awaited<PreparedContinue["started"]>,
  rc: JoinRequestContext,
  where: FailureContext,
): Promise<JoinResponse> {
  const pending = session.pending;
  if (pending.type !== "challenge" || !begun) {
    throw unexpectedAnswer("challenge_solution", session);
  }
  try {
    await begun.solved;
  } catch (e) {
    const consumes = session.flow !== "refresh" && pending.purpose !== "rotation";
    if (!(e instanceof KeyboundError) || !consumes) throw e;
    throw new JoinFailure(e, [recoveryEvent(session, where, {
      error: e.message,
      publicKey: pending.public_key,
      count: 0,
      mode: session.mode,
    })]);
  }

  // A lock derived from this step's reads is committed only if they still
  // hold (`StaleReads` otherwise): then the step reads and decides again.
  for (let round = 1;; round++) {
    const reads = round === 1 ? begun.reads : readStep(ctx, session);
    try {
      return await decideOnReads(ctx, session, pending, await reads, begun.joinState, rc, where);
    } catch (e) {
      if (!(e instanceof StaleReads)) throw e;
      if (round >= MAX_STEP_ROUNDS) {
        throw new KeyboundError("CONFLICT", "join state changed during the join; please try again");
      }
    }
  }
}

/** Rounds of reads one challenge answer takes at most when its reads go stale. */
const MAX_STEP_ROUNDS = 3;

/**
 * `err` for a step whose reads show the token or instance moved under it —
 * unless the move was a copy of this same session committing: the winner
 * writes the used-marker in the commit that moves them, so once a read has
 * seen the move, a later read of the marker sees it too (`SESSION_INVALID`,
 * which changes nothing). The step's reads are separate reads, which on some
 * backends (PostgreSQL) do not share a snapshot.
 */
async function refusedOrReplayed(
  ctx: ServerContext,
  session: JoinSession,
  err: KeyboundError,
): Promise<KeyboundError> {
  return await ctx.backend.get(usedSessionKey(session.sid)) ? sessionUsed() : err;
}

/** What one round of a challenge answer reads. */
interface StepReads {
  /** The token. */
  entry: TokenEntry;
  /** The lock in force on the token (and, for a refresh, the bot user and instance). */
  lock: Lock | null;
  /** The session's used-marker. */
  used: boolean;
  /** The token's bot. */
  bot: Bot | null;
  /** The refreshing instance (refreshes), else null. */
  instance: Entry<BotInstance> | null;
  /** Version of the locks-changed marker `lock` was decided on; the commit checks it. */
  locksVersion: string | null;
}

/**
 * One round of reads serves a whole step: the used-marker (so a replayed
 * session is refused before it could trigger a lock twice) and the bot and
 * instance that `finish` needs. A refresh's locks on the bot user and
 * instance (docs/protocol.md §2 rule 6, left to us by the signed request
 * check) come from the same listing as the token's. On Deno KV the point
 * reads go out as one batch.
 */
async function readStep(ctx: ServerContext, session: JoinSession): Promise<StepReads> {
  const locks = lockSnapshot(ctx);
  const [entry, lock, used, bot, instance, { version: locksVersion }] = await Promise.all([
    readToken(ctx, session.token),
    findLockInForce(
      ctx,
      {
        join_token: session.token,
        ...(session.refresh
          ? { user: botUserName(session.bot), bot_instance_id: session.refresh.instance }
          : {}),
      },
      undefined,
      locks.then((s) => s.locks),
    ),
    ctx.backend.get(usedSessionKey(session.sid)),
    findBot(ctx, session.bot),
    session.refresh
      ? readBotInstance(ctx, session.bot, session.refresh.instance)
      : Promise.resolve(null),
    locks,
  ]);
  return { entry, lock, used: used !== null, bot, instance, locksVersion };
}

/** One round of a challenge answer's reads and the decision taken on them. */
async function decideOnReads(
  ctx: ServerContext,
  session: JoinSession,
  pending: PendingChallenge,
  reads: StepReads,
  early: EarlyJoinState | null,
  rc: JoinRequestContext,
  where: FailureContext,
): Promise<JoinResponse> {
  // Proof of possession is done: only now are the token's state and locks
  // consulted (the reads may have been taken while it was being checked).
  const { entry, lock, used, bot, instance, locksVersion } = reads;
  if (used) throw sessionUsed();
  const read: FinishReads = { entry, bot, instance, locksVersion };
  const consumes = session.flow !== "refresh";
  if (!(await expectationsHold(entry.token, session.expect, consumes))) {
    throw await refusedOrReplayed(ctx, session, unexpectedBackendState());
  }

  if (pending.purpose === "rotation") {
    if (lock) throw lockedError(lock);
    const rotated = { ...session, rotated_from: session.bound_key, bound_key: pending.public_key };
    return await finish(ctx, rotated, read, where);
  }
  const proven = { ...session, proven_key: pending.public_key, bound_key: pending.public_key };
  const checked = await checksAfterProof(ctx, proven, read, lock, rc, where, early);
  if (rotationDue(entry.token, ctx.now())) return await rotationStep(ctx, checked, "rotation");
  return await finish(ctx, checked, read, where);
}

/** What a join-state verification is run on. */
interface JoinStateInputs {
  /** The verification's options. */
  options: Parameters<typeof verifyJoinState>[0];
  /** The keys it trusts (and which of them a rotation dropped). */
  trusted: ReturnType<typeof joinStateKeys>;
}

function joinStateInputs(
  ctx: ServerContext,
  joinState: string,
  botName: string,
  expect: { recoverySequence: number; botInstanceId: string },
): JoinStateInputs {
  const trusted = joinStateKeys(ctx);
  return {
    trusted,
    options: {
      joinState,
      clusterName: ctx.clusterName,
      botName,
      trustedKeys: trusted.keys,
      now: ctx.now(),
      expect,
    },
  };
}

/**
 * A join-state verification begun with the session's expectations, before
 * the token was read (see {@linkcode PreparedContinue}); its outcome is used
 * only if the verification the reads call for has the same inputs.
 */
interface EarlyJoinState {
  /** What it was run on. */
  inputs: JoinStateInputs;
  /** Its outcome. */
  claims: ReturnType<typeof verifyJoinState>;
}

/** The session's join state verified against what `begin` saw of the token, or null. */
function earlyJoinState(ctx: ServerContext, session: JoinSession): EarlyJoinState | null {
  if (!session.join_state || session.expect.count === 0) return null;
  const inputs = joinStateInputs(ctx, session.join_state, session.bot, {
    recoverySequence: session.expect.count,
    botInstanceId: session.expect.instance,
  });
  return { inputs, claims: started(verifyJoinState(inputs.options)) };
}

/** True if two verifications check the same document the same way (their times aside). */
function sameJoinStateInputs(a: JoinStateInputs, b: JoinStateInputs): boolean {
  const x = a.options;
  const y = b.options;
  return x.joinState === y.joinState && x.botName === y.botName &&
    x.clusterName === y.clusterName &&
    x.expect.recoverySequence === y.expect.recoverySequence &&
    x.expect.botInstanceId === y.expect.botInstanceId &&
    x.trustedKeys.length === y.trustedKeys.length &&
    x.trustedKeys.every((k, i) =>
      k.kid === y.trustedKeys[i].kid && k.keyPair.publicKey === y.trustedKeys[i].keyPair.publicKey
    );
}

/**
 * The checks after the first proof, in Teleport's order: recovery budget
 * (case E), lock, join state (cases D and E), instance (case D). Returns the
 * session with the verified join state's instance (recoveries).
 */
async function checksAfterProof(
  ctx: ServerContext,
  session: JoinSession,
  read: FinishReads,
  lock: Lock | null,
  rc: JoinRequestContext,
  where: FailureContext,
  early: EarlyJoinState | null,
): Promise<JoinSession> {
  if (session.flow === "onboarding") {
    if (lock) throw lockedError(lock);
    return session;
  }
  const token = read.entry.token;
  const status = statusOf(token);
  const mode = modeOf(token);
  if (session.flow === "recovery" && mode === "standard" && !joinsRemaining(token)) {
    const err = new KeyboundError("NO_RECOVERIES_REMAINING", "no rejoins remaining");
    throw new JoinFailure(err, [recoveryEvent(session, where, {
      error: err.message,
      publicKey: session.bound_key,
      count: status.recovery_count,
      mode,
    })]);
  }
  if (lock) throw lockedError(lock);
  let prevInstance: string | undefined;
  if (status.recovery_count > 0 && mode !== "insecure") {
    if (!session.join_state) {
      throw new KeyboundError(
        "JOIN_STATE_REQUIRED",
        "previous join state is required but was not provided",
      );
    }
    try {
      const inputs = joinStateInputs(ctx, session.join_state, token.spec.bot_name, {
        recoverySequence: status.recovery_count,
        botInstanceId: status.bound_bot_instance_id ?? "",
      });
      const trusted = inputs.trusted;
      const claims = await (early && sameJoinStateInputs(early.inputs, inputs)
        ? early.claims
        : verifyJoinState(inputs.options));
      prevInstance = claims.bot_instance_id;
      if (trusted.dropped.size > 0 && trusted.dropped.has(joinStateKid(session.join_state))) {
        ctx.log.warn("join state signed by a bound_keypair key a rotation dropped; accepted", {
          bot: session.bot,
          token: session.token,
        });
      }
    } catch (e) {
      if (!(e instanceof JoinStateVerificationError)) throw e;
      const { mutations } = createLockMutations(ctx, {
        target: { join_token: session.token },
        message: joinStateLockMessage(session.token, session.bot),
        remoteAddr: rc.remoteAddr,
      });
      // Locked only against the token as read (docs/security.md, "Locks").
      throw await lockingFailure(
        ctx,
        new KeyboundError("JOIN_STATE_INVALID", "join state verification failed"),
        [{
          type: "join_token.bound_keypair.join_state_verification_failed",
          status: { success: false, error: e.message },
          ...connectionOf(rc.remoteAddr),
          token_name: session.token,
          bot_name: session.bot,
        }],
        mutations,
        readChecks(session, read),
      );
    }
  }
  if (session.flow === "refresh" && session.refresh!.instance !== status.bound_bot_instance_id) {
    throw new AccessDeniedError("bot instance mismatch");
  }
  return prevInstance === undefined ? session : { ...session, prev_instance: prevInstance };
}
