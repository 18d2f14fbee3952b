/**
 * The one atomic commit of a join (docs/protocol.md §4.6): token status,
 * bot instance, the session's used-marker, the resume record (the result,
 * kept so a client that lost the answer can resume, see `resume.ts`) and the
 * audit events, written by a single compare-and-swap on the versions read
 * (and the lock-change marker's, so a lock written since the join's lock
 * check refuses it). When the token or instance
 * changed in between, the commit is rebuilt on the fresh values and retried
 * only if every expectation the join relied on still holds; otherwise the
 * join fails with `UNEXPECTED_BACKEND_STATE`. Of N concurrent recoveries of
 * one token, only one can therefore advance `recovery_count`.
 *
 * @module
 */
import { AccessDeniedError, KeyboundError } from "../../errors.ts";
import { sha256 } from "../../crypto/random.ts";
import type { Entry, JsonValue, Mutation } from "../../storage/backend.ts";
import type { JoinResult } from "../../protocol/messages.ts";
import type { BotInstance, BoundKeypairStatus, Token } from "../../resources/schemas.ts";
import { toHex } from "../../util/encoding.ts";
import { type AuditInput, auditMutations } from "../audit.ts";
import { botInstanceMutation, latestGeneration, readBotInstance } from "../bot_instances.ts";
import type { ServerContext } from "../context.ts";
import { CA_REVISION_KEY, LOCKS_CHANGED_KEY, resourceKey, usedSessionKey } from "../keys.ts";
import { StaleReads } from "./failures.ts";
import { getResource, validateWrite } from "../resources/mod.ts";
import { resumeRecordMutation } from "./resume_record.ts";

/** Attempts of the final commit before giving up with `CONFLICT`. */
export const MAX_COMMIT_ATTEMPTS = 5;

/** What a join saw of the token when it decided, and relies on at commit. */
export interface TokenExpectations {
  /** `status.recovery_count`. */
  count: number;
  /** `spec.recovery.limit`; a commit that consumes a recovery needs it not lowered. */
  limit: number;
  /** `status.bound_public_key` (`""` if none). */
  bound_key: string;
  /** `status.bound_bot_instance_id` (`""` if none). */
  instance: string;
  /** Hex SHA-256 of `status.registration_secret`, `""` if none; the secret never enters a session. */
  secret: string;
  /** `status.last_rotated_at` (`""` if unset). */
  last_rotated_at: string;
}

/** The token's bound-keypair status, with defaults. */
export function statusOf(token: Token): BoundKeypairStatus {
  return token.status?.bound_keypair ?? { recovery_count: 0 };
}

/** Hex SHA-256 of a registration secret, `""` for none. */
export async function secretDigest(secret: string | undefined): Promise<string> {
  return secret ? toHex(await sha256(secret)) : "";
}

/** The expectations of a join that reads `token` now. */
export async function expectationsOf(token: Token): Promise<TokenExpectations> {
  const s = statusOf(token);
  return {
    count: s.recovery_count,
    limit: token.spec.bound_keypair.recovery.limit,
    bound_key: s.bound_public_key ?? "",
    instance: s.bound_bot_instance_id ?? "",
    secret: await secretDigest(s.registration_secret),
    last_rotated_at: s.last_rotated_at ?? "",
  };
}

/** True if `token` still satisfies what the join relied on. */
export async function expectationsHold(
  token: Token,
  expect: TokenExpectations,
  consumesRecovery: boolean,
): Promise<boolean> {
  const now = await expectationsOf(token);
  return now.count === expect.count &&
    (!consumesRecovery || now.limit >= expect.limit) &&
    now.bound_key === expect.bound_key &&
    now.instance === expect.instance &&
    now.secret === expect.secret &&
    now.last_rotated_at === expect.last_rotated_at;
}

/** The error of a join whose token changed under it. */
export function unexpectedBackendState(): KeyboundError {
  return new KeyboundError("UNEXPECTED_BACKEND_STATE", "unexpected backend state");
}

/** A token as the join reads it: the resource and its backend version. */
export interface TokenEntry {
  /** The token. */
  token: Token;
  /** Backend version. */
  version: string;
}

/** Reads a live token; `ACCESS_DENIED` if it does not exist or has expired. */
export async function readToken(ctx: ServerContext, name: string): Promise<TokenEntry> {
  const stored = await getResource(ctx, "token", name);
  if (!stored) throw new AccessDeniedError(`join token "${name}" does not exist or has expired`);
  return { token: stored.resource, version: stored.version };
}

/** How the join changes the bot instance. */
export type InstanceWrite =
  | {
    /** A recovery: a new instance. */
    kind: "create";
    /** The record. */
    instance: BotInstance;
  }
  | {
    /** A refresh: update the existing instance. */
    kind: "update";
    /** Generation the instance must still be at. */
    expectedGeneration: number;
    /** Applies the refresh to the current record. */
    apply(current: BotInstance): BotInstance;
  };

/** Everything the final commit needs. */
export interface JoinCommitPlan {
  /** Token name. */
  tokenName: string;
  /** Bot name. */
  botName: string;
  /** Instance id the join binds (new or existing). */
  instanceId: string;
  /** Session id, marked used by the commit. */
  sessionId: string;
  /** Session expiry, epoch seconds: the used-marker is needed only until then. */
  sessionExp: number;
  /** What the join relied on. */
  expect: TokenExpectations;
  /** The join consumes a recovery (onboarding or recovery). */
  consumesRecovery: boolean;
  /** New status from the current one. */
  applyStatus(current: BoundKeypairStatus): BoundKeypairStatus;
  /** Audit events of the join, from the token as it will be stored. */
  events(committed: Token): AuditInput[];
  /** The bot-instance write. */
  instance: InstanceWrite;
  /** The certificate subject key, authorized_keys text (a resume must prove it). */
  subjectKey: string;
  /** The result the client receives, from the token as it will be stored. */
  result(committed: Token): Promise<JoinResult>;
  /** When the resume record expires, epoch milliseconds. */
  resumeUntil: number;
  /**
   * The CA revision the certificates and join state were signed under
   * (`ctx.cas.revision` before signing): the commit requires it unchanged.
   */
  caRevision: string | null;
  /**
   * The locks-changed marker's version the join's lock check was current
   * for: the commit requires it unchanged, so a lock written after the
   * step's reads refuses the commit ({@linkcode StaleReads}: the step reads
   * and decides again, and sees the lock).
   */
  locksVersion: string | null;
}

/**
 * The CAs changed (a rotation phase, possibly on another instance) after the
 * join signed its credentials: nothing was committed; reload and sign again.
 */
export class CaChangedError extends Error {
  /** The error. */
  constructor() {
    super("certificate authorities changed during the join");
  }
}

function tokenMutation(token: Token): Extract<Mutation, { type: "set" }> {
  const expires = token.metadata.expires;
  return {
    type: "set",
    key: resourceKey("token", token.metadata.name),
    value: token as unknown as JsonValue,
    ...(expires ? { expiresAt: Date.parse(expires) } : {}),
  };
}

function withStatus(token: Token, status: BoundKeypairStatus): Token {
  const { revision: _revision, ...metadata } = token.metadata;
  return { ...token, metadata, status: { ...token.status, bound_keypair: status } };
}

/** The error of a replayed session. */
export function sessionUsed(): KeyboundError {
  return new KeyboundError("SESSION_INVALID", "join session was already used");
}

/**
 * Commits the join starting from what the caller read. Returns the result
 * (also kept in the token's resume record). Throws `SESSION_INVALID` (session replayed),
 * `UNEXPECTED_BACKEND_STATE` (an expectation no longer holds) or `CONFLICT`
 * (still contended after {@linkcode MAX_COMMIT_ATTEMPTS}) or
 * {@linkcode StaleReads} (a lock was written since the join's lock check).
 */
export async function commitJoin(
  ctx: ServerContext,
  plan: JoinCommitPlan,
  read: { token: TokenEntry; instance: Entry<BotInstance> | null },
): Promise<JoinResult> {
  const markerKey = usedSessionKey(plan.sessionId);
  const instanceKey = resourceKey("bot_instance", plan.botName, plan.instanceId);
  let { token, instance } = read;
  for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      const [freshToken, freshInstance, marker, revision, locksMarker] = await Promise.all([
        readToken(ctx, plan.tokenName),
        plan.instance.kind === "update"
          ? readBotInstance(ctx, plan.botName, plan.instanceId)
          : Promise.resolve(null),
        ctx.backend.get(markerKey),
        ctx.backend.get(CA_REVISION_KEY),
        ctx.backend.get(LOCKS_CHANGED_KEY),
      ]);
      if (marker !== null) throw sessionUsed();
      if ((locksMarker?.version ?? null) !== plan.locksVersion) throw new StaleReads();
      if ((revision?.version ?? null) !== plan.caRevision) throw new CaChangedError();
      if (!(await expectationsHold(freshToken.token, plan.expect, plan.consumesRecovery))) {
        throw unexpectedBackendState();
      }
      token = freshToken;
      instance = freshInstance;
    }
    let instanceValue: BotInstance;
    if (plan.instance.kind === "update") {
      if (!instance || latestGeneration(instance.value) !== plan.instance.expectedGeneration) {
        throw unexpectedBackendState();
      }
      instanceValue = plan.instance.apply(instance.value);
    } else {
      instanceValue = plan.instance.instance;
    }
    const committed = withStatus(token.token, plan.applyStatus(statusOf(token.token)));
    const result = await plan.result(committed);
    const tokenWrite = tokenMutation(committed);
    const instanceWrite = botInstanceMutation(instanceValue);
    const mutations: Mutation[] = [
      tokenWrite,
      instanceWrite,
      {
        type: "set",
        key: markerKey,
        value: { used_at: ctx.now().toISOString() },
        expiresAt: (plan.sessionExp + 60) * 1000,
      },
      resumeRecordMutation(plan.tokenName, {
        sid: plan.sessionId,
        bound_public_key: statusOf(committed).bound_public_key ?? "",
        subject_key: plan.subjectKey,
        committed_at: ctx.now().toISOString(),
        result,
      }, plan.resumeUntil),
      ...plan.events(committed).flatMap((e) => auditMutations(ctx, e)),
    ];
    const commit = ctx.backend.commit({
      checks: [
        { key: resourceKey("token", plan.tokenName), version: token.version },
        { key: instanceKey, version: instance?.version ?? null },
        { key: markerKey, version: null },
        { key: CA_REVISION_KEY, version: plan.caRevision },
        { key: LOCKS_CHANGED_KEY, version: plan.locksVersion },
      ],
      mutations,
    });
    // The next refresh reads this token (`begin`) and instance (`continue`)
    // first: they are validated for it now, while the backend stores them,
    // instead of on that refresh's path.
    const keep = [
      validateWrite(ctx, "token", tokenWrite.key, committed),
      validateWrite(ctx, "bot_instance", instanceWrite.key, instanceWrite.value),
    ];
    const r = await commit;
    if (r.ok) {
      for (const k of keep) k();
      return result;
    }
  }
  throw new KeyboundError("CONFLICT", "committing updated token state, please try again");
}
