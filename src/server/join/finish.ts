/**
 * The end of a successful join: the generation check of a refresh, the
 * certificates, the one atomic commit and the join state issued from what
 * was committed.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { randomUuid } from "../../crypto/random.ts";
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { issueJoinState, type JoinStateClaims } from "../../protocol/join_state.ts";
import type { JoinResponse, JoinResult } from "../../protocol/messages.ts";
import type { Bot, BotInstance, BoundKeypairStatus, Token } from "../../resources/schemas.ts";
import type { Check, Entry } from "../../storage/backend.ts";
import { fromPem } from "../../util/encoding.ts";
import type { AuditInput } from "../audit.ts";
import {
  type Authentication,
  instanceExpiry,
  latestGeneration,
  newBotInstance,
  withAuthentication,
} from "../bot_instances.ts";
import type { ServerContext } from "../context.ts";
import { LOCKS_CHANGED_KEY, resourceKey, usedSessionKey } from "../keys.ts";
import { createLockMutations, generationLockMessage } from "../locks.ts";
import { refreshCas } from "../rotation/cache.ts";
import { certificateTtlSeconds, issueBotCertificates, requireBot, trustBundleOf } from "./certs.ts";
import {
  CaChangedError,
  commitJoin,
  type InstanceWrite,
  statusOf,
  type TokenEntry,
} from "./commit.ts";
import { recoveryEvent, rotationEvent } from "./events.ts";
import { connectionOf, type FailureContext, lockingFailure } from "./failures.ts";
import { modeOf } from "./policy.ts";
import { resumeUntil } from "./resume_record.ts";
import type { JoinSession } from "./session_state.ts";

/** What `finish` works from, read after the proof of possession. */
export interface FinishReads {
  /** The token and its version. */
  entry: TokenEntry;
  /** The token's bot, null if it does not exist. */
  bot: Bot | null;
  /** The refreshing instance (refreshes only), null if absent. */
  instance: Entry<BotInstance> | null;
  /** Version of the locks-changed marker the step's lock check is current for. */
  locksVersion: string | null;
}

/**
 * Checks that what a step read is still what is stored: the session's
 * used-marker absent, the token and (refresh) the instance at the versions
 * read, and no lock written since its lock check. A state change derived
 * from those reads is committed with them.
 */
export function readChecks(session: JoinSession, read: FinishReads): Check[] {
  return [
    { key: usedSessionKey(session.sid), version: null },
    { key: LOCKS_CHANGED_KEY, version: read.locksVersion },
    { key: resourceKey("token", session.token), version: read.entry.version },
    ...(session.refresh
      ? [{
        key: resourceKey("bot_instance", session.bot, session.refresh.instance),
        version: read.instance?.version ?? null,
      }]
      : []),
  ];
}

/** The claims of the join state issued for a token with `spec` and `status`. */
function joinStateClaims(spec: Token["spec"], status: BoundKeypairStatus): JoinStateClaims {
  return {
    bot_instance_id: status.bound_bot_instance_id ?? "",
    recovery_sequence: status.recovery_count,
    recovery_limit: spec.bound_keypair.recovery.limit,
    recovery_mode: spec.bound_keypair.recovery.mode,
  };
}

/**
 * Signs join states for one join with the bound_keypair CA's active key,
 * once per distinct set of claims (a commit retried on an unchanged token
 * reuses the signature).
 */
function joinStateSigner(
  ctx: ServerContext,
  botName: string,
  now: Date,
): (claims: JoinStateClaims) => Promise<string> {
  const key = ctx.cas.boundKeypair.jwt?.[0];
  if (!key) throw new KeyboundError("INTERNAL", "bound_keypair CA has no signing key");
  const signed = new Map<string, Promise<string>>();
  return (claims) => {
    const id = JSON.stringify(claims);
    let p = signed.get(id);
    if (!p) {
      p = issueJoinState({ clusterName: ctx.clusterName, botName, key, now, claims });
      signed.set(id, p);
    }
    return p;
  };
}

/** Times a join signs again because the CAs changed under it, before `CONFLICT`. */
const MAX_CA_RETRIES = 3;

/**
 * Issues the credentials and commits the join; the result carries a fresh
 * join state and the trust bundle. When a rotation changed the CAs between
 * signing and commit, nothing is committed: the CAs are reloaded and the
 * credentials signed again.
 */
export async function finish(
  ctx: ServerContext,
  session: JoinSession,
  read: FinishReads,
  where: FailureContext,
): Promise<JoinResponse> {
  for (let attempt = 0;; attempt++) {
    try {
      return await finishOnce(ctx, session, read, where);
    } catch (err) {
      if (!(err instanceof CaChangedError) || attempt + 1 >= MAX_CA_RETRIES) {
        if (err instanceof CaChangedError) {
          throw new KeyboundError("CONFLICT", "certificate authorities changed; please try again");
        }
        throw err;
      }
      ctx.log.info("certificate authorities changed during a join; signing again", {
        bot: session.bot,
      });
      await refreshCas(ctx, 0);
    }
  }
}

async function finishOnce(
  ctx: ServerContext,
  session: JoinSession,
  read: FinishReads,
  where: FailureContext,
): Promise<JoinResponse> {
  // Read before anything is signed: the commit requires it unchanged.
  const caRevision = ctx.cas.revision;
  const refresh = session.refresh;
  const { entry, instance: instanceEntry } = read;
  const bot = requireBot(read.bot, session.bot);
  if (refresh) {
    const stored = instanceEntry ? latestGeneration(instanceEntry.value) : null;
    if (stored !== refresh.generation) {
      // Locked only if nothing this was derived from moved since it was read:
      // a copy of this session that committed in between moved the
      // generation (docs/security.md, "Locks").
      const { mutations } = createLockMutations(ctx, {
        target: { join_token: session.token },
        message: generationLockMessage(session.token, session.bot, refresh.instance),
        remoteAddr: where.remoteAddr,
      });
      const err = new KeyboundError(
        "GENERATION_MISMATCH",
        `cert generation mismatch for bot ${session.bot}/${refresh.instance}: ` +
          `stored=${stored ?? "none"}, presented=${refresh.generation}`,
      );
      throw await lockingFailure(
        ctx,
        err,
        [{
          type: "bot.generation_mismatch",
          status: { success: false, error: err.message },
          ...connectionOf(where.remoteAddr),
          bot_name: session.bot,
          bot_instance_id: refresh.instance,
          token_name: session.token,
          stored: stored ?? 0,
          presented: refresh.generation,
        }],
        mutations,
        readChecks(session, read),
      );
    }
  }

  const now = ctx.now();
  const ttl = certificateTtlSeconds(bot, session.ttl);
  const instanceId = refresh ? refresh.instance : randomUuid();
  const generation = refresh ? refresh.generation + 1 : 1;
  // `begin` checked both encodings are one key and stored them canonically,
  // so the parsed SSH form serves both, and the SPKI and SSH blob are
  // embedded as they are instead of exporting the key again.
  const { key: subjectKey, blob: subjectBlob } = await parseAuthorizedKey(session.subject.ssh);
  const auth: Authentication = {
    authenticated_at: now.toISOString(),
    join_method: "bound_keypair",
    join_token: session.token,
    generation,
    public_key: session.subject.tls,
  };
  const expires = instanceExpiry(now, ttl);
  const instance: InstanceWrite = refresh
    ? {
      kind: "update",
      expectedGeneration: refresh.generation,
      apply: (current) => withAuthentication(current, auth, expires),
    }
    : {
      kind: "create",
      instance: newBotInstance({
        botName: session.bot,
        instanceId,
        previousInstanceId: session.prev_instance,
        authentication: auth,
        expires,
      }),
    };
  const consumes = session.flow !== "refresh";
  const rotated = session.rotated_from !== undefined;
  const applyStatus = (current: BoundKeypairStatus): BoundKeypairStatus => {
    const s = { ...current };
    if (session.flow === "onboarding") {
      s.bound_public_key = session.proven_key;
      delete s.registration_secret;
    }
    if (consumes) {
      s.recovery_count = current.recovery_count + 1;
      s.last_recovered_at = now.toISOString();
      s.bound_bot_instance_id = instanceId;
    }
    if (rotated) {
      s.bound_public_key = session.bound_key;
      s.last_rotated_at = now.toISOString();
    }
    return s;
  };
  // The join state is signed beside the certificates, for the token as read;
  // the commit uses that signature if the token it stores carries the same
  // claims (the usual case), and signs again otherwise.
  const joinStateOf = joinStateSigner(ctx, session.bot, now);
  joinStateOf(joinStateClaims(entry.token.spec, applyStatus(statusOf(entry.token)))).catch(
    () => {},
  );
  const { certificates: certs, remember } = await issueBotCertificates(ctx, {
    bot,
    instanceId,
    generation,
    tokenName: session.token,
    tlsPublicKey: subjectKey,
    tlsPublicKeySpki: fromPem("PUBLIC KEY", session.subject.tls),
    sshPublicKey: subjectKey,
    sshPublicKeyBlob: subjectBlob,
    ttlSeconds: ttl,
  });
  // The result is built inside the commit, from the token as it will be
  // stored: the same commit keeps it for a resume (resume_record.ts).
  const resultOf = async (committed: Token): Promise<JoinResult> => {
    const status = statusOf(committed);
    const joinState = await joinStateOf(joinStateClaims(committed.spec, status));
    return {
      bot_name: session.bot,
      bot_instance_id: instanceId,
      generation,
      expires: certs.expires.toISOString(),
      certificates: {
        tls_cert: certs.tls_cert,
        tls_ca_certs: certs.tls_ca_certs,
        ssh_cert: certs.ssh_cert,
        ssh_ca_keys: certs.ssh_ca_keys,
      },
      trust_bundle: trustBundleOf(ctx),
      bound_keypair: { join_state: joinState, public_key: status.bound_public_key ?? "" },
    };
  };
  // The next refresh's cache entry is made while the join commits (a digest
  // on another thread): if the commit fails, the entry names a certificate
  // nobody received, which no one can present. A failure only costs the next
  // request a full verification.
  const remembered = remember().catch((e) =>
    ctx.log.warn("could not remember an issued certificate", { error: String(e) })
  );
  const result = await commitJoin(ctx, {
    tokenName: session.token,
    botName: session.bot,
    instanceId,
    sessionId: session.sid,
    sessionExp: session.exp,
    expect: session.expect,
    consumesRecovery: consumes,
    instance,
    subjectKey: session.subject.ssh,
    result: resultOf,
    resumeUntil: resumeUntil(now, certs.expires),
    caRevision,
    locksVersion: read.locksVersion,
    applyStatus,
    events: (token) => {
      const status = statusOf(token);
      const mode = modeOf(token);
      const events: AuditInput[] = [];
      if (consumes) {
        events.push(recoveryEvent(session, where, {
          publicKey: session.proven_key ?? "",
          count: status.recovery_count,
          mode,
        }));
      }
      if (rotated) {
        events.push(rotationEvent(session, where, {
          previous: session.rotated_from!,
          next: session.bound_key,
        }));
      }
      events.push({
        type: "bot.join",
        status: { success: true },
        ...connectionOf(where.remoteAddr),
        bot_name: session.bot,
        bot_instance_id: instanceId,
        token_name: session.token,
        method: "bound_keypair",
        generation,
        public_key: session.bound_key,
        recovery_count: status.recovery_count,
        recovery_mode: mode,
      });
      return events;
    },
  }, { token: entry, instance: instanceEntry }).finally(() => remembered);
  return { result };
}
