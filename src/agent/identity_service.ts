/**
 * Obtains and renews the bot's identity with bound-keypair joins, as
 * Teleport's identity service does: a refresh (case D, same bot instance, no
 * recovery consumed) while the certificates are valid, a fresh join
 * otherwise (first join, or a recovery that consumes one and creates a new
 * bot instance).
 *
 * Every join is crash-safe (docs/protocol.md §4.9): before an answer after
 * which the server may commit, the pending-join record is stored; a renewal
 * that finds one resumes that join first, and the group write storing a
 * result removes it.
 *
 * @module
 */
import { algOf } from "../crypto/keys.ts";
import { randomHex } from "../crypto/random.ts";
import { isKeyboundError, KeyboundError } from "../errors.ts";
import { type BotIdentity, identityIsValid } from "./identity.ts";
import type { IdentityServiceOptions } from "./identity_service_options.ts";
import { IdentityStore } from "./identity_store.ts";
import {
  ANSWER_MAY_BE_LOST,
  COPY_MAY_HAVE_COMMITTED,
  RESUME_IMPOSSIBLE,
} from "./join_failure_codes.ts";
import type { BoundJoin, BoundResume, JoinResult } from "./join_types.ts";
import { type PendingJoin, pendingSubjectKey } from "./pending_join.ts";
import { generateStoredKeyPair } from "./stored_keys.ts";

export type { BoundJoin, BoundResume };
export {
  certificateKeyAlgorithmFor,
  type IdentityServiceOptions,
} from "./identity_service_options.ts";

/** Message Teleport gives when there is nothing to join with. */
export const NO_LOCAL_CREDENTIALS =
  "could not complete bound keypair joining as no local credentials are available and no " +
  "registration secret was provided; to continue, either generate a keypair with `tbot keypair " +
  "create` and register it with the auth service, or generate a registration secret and provide " +
  "it with onboarding.bound_keypair.registration_secret (or TBOT_REGISTRATION_SECRET)";

/** Holds the current identity and renews it. */
export class IdentityService {
  #o: IdentityServiceOptions;
  #held: IdentityStore;
  /** The identity whose certificate the server refused with `CA_KEY_DROPPED`. */
  #dropped: BotIdentity | null = null;
  /**
   * Starts from the identity found in storage.
   *
   * @param options dependencies
   * @param stored the identity loaded from storage, if any
   */
  constructor(options: IdentityServiceOptions, stored: BotIdentity | null) {
    this.#o = options;
    this.#held = new IdentityStore(options, stored);
  }

  /** The current identity, as {@linkcode IdentityStore} holds it. */
  get #identity(): BotIdentity | null {
    return this.#held.identity;
  }

  /** The current identity (possibly expired), or null before the first join. */
  get identity(): BotIdentity | null {
    return this.#identity;
  }

  /** True if a join whose answer may have been lost awaits its resume (see `renew`). */
  async hasPendingJoin(): Promise<boolean> {
    return await this.#held.hasPendingJoin();
  }

  /** True if the current identity is within its validity. */
  hasValidIdentity(): boolean {
    return this.#identity !== null && this.#identity !== this.#dropped &&
      identityIsValid(this.#identity, this.#o.clock.now());
  }

  /**
   * One renewal: first the resume of a join whose answer was lost, if a
   * pending-join record is stored; otherwise a refresh with the current
   * certificate while it is valid, or a fresh join. A refresh refused
   * because the certificate expired during it becomes a recovery at once.
   * Persists everything the join changed in one group write (which also
   * removes the pending record) before returning the new identity.
   */
  async renew(): Promise<BotIdentity> {
    const resumed = await this.#resumePending();
    if (resumed) return resumed;
    const refresh = this.hasValidIdentity();
    try {
      return await this.#join(refresh);
    } catch (e) {
      if (!refresh || !isKeyboundError(e)) throw e;
      if (e.code === "CA_KEY_DROPPED") {
        this.dropCertificate(e.message);
      } else if (e.code === "UNAUTHENTICATED" && !this.hasValidIdentity()) {
        // The certificate expired between `begin` and a signed `continue`.
        this.#o.log.warn(
          "the certificate expired during the refresh; joining with the bound key as a recovery",
          { error: e.message },
        );
      } else throw e;
      return await this.#resumePending() ?? await this.#join(false);
    }
  }

  /**
   * Stops using the current certificate because the server answered
   * `CA_KEY_DROPPED`: a completed CA rotation dropped the key that issued it
   * (the bot missed the rotation). The next renewal joins with the bound key
   * as a recovery, even if the certificate is still within its validity.
   */
  dropCertificate(reason: string): void {
    if (this.#dropped === this.#identity) return;
    this.#dropped = this.#identity;
    this.#o.log.warn(
      "the bot's certificate was issued by a CA key that a completed CA rotation dropped; " +
        "discarding it and joining with the bound key as a recovery (this consumes one recovery)",
      { error: reason, expires: this.#identity?.notAfter.toISOString() },
    );
  }

  /** Resumes a stored pending join; null when there is none or the server has nothing to resume. */
  async #resumePending(): Promise<BotIdentity | null> {
    const o = this.#o;
    let pending = await this.#held.readPending();
    if (!pending) return null;
    const [boundKey, subjectKey] = await Promise.all([
      o.clientState.findPrivateKey(pending.bound_public_key).catch(() => null),
      pendingSubjectKey(o.storage, pending).catch(() => null),
    ]);
    if (!boundKey || !subjectKey) {
      o.log.warn("a pending join cannot be resumed: its keys are not in storage; joining normally");
      return null;
    }
    if (!pending.resume_id) {
      // The claim is stored before it is sent: if this answer is lost too,
      // the retry presents the same claim and gets the same result.
      pending = { ...pending, resume_id: randomHex(16) };
      await this.#held.writePending(pending);
    }
    let result: JoinResult;
    try {
      result = await o.resume({
        session: pending.session,
        resumeId: pending.resume_id!,
        clusterName: pending.cluster_name,
        boundKey,
        subjectKey: subjectKey.privateKey,
      });
    } catch (e) {
      if (!isKeyboundError(e) || !RESUME_IMPOSSIBLE.has(e.code)) throw e;
      // The server never committed that answer (or another holder resumed
      // it, or it can no longer open the session): join as usual, and let
      // the generation counter and join state judge the stored state.
      o.log.info("the interrupted join cannot be resumed; joining normally", { code: e.code });
      await this.#held.deletePending();
      return null;
    }
    const identity = await this.#held.store(result, subjectKey);
    o.log.info("resumed a join whose answer was lost", this.#fields(identity));
    const wanted = o.certificateKeyAlgorithm ?? "ES256";
    const resumedAlg = algOf(subjectKey.privateKey);
    if (resumedAlg === wanted) return identity;
    // The resumed join was begun under another configuration (tbot killed
    // mid-join, then an identity output that copies the bot's P-256
    // certificate added): refresh once more, now, with a key of the
    // configured algorithm, so no output is written from the other one. The
    // resumed identity is stored first, so this is an ordinary refresh with
    // its own pending record: a crash during it resumes that refresh (whose
    // key is of the configured algorithm) and consumes no recovery.
    o.log.info(
      "the resumed join's certificate key is not of the configured algorithm; refreshing",
      {
        resumed: resumedAlg,
        configured: wanted,
      },
    );
    return await this.#join(true);
  }

  /** One join: a refresh with the current certificate, or a fresh join. */
  async #join(refresh: boolean): Promise<BotIdentity> {
    const o = this.#o;
    const current = this.#identity;
    const state = o.clientState;
    if (!refresh && !state.isStatic && !state.activeKey && !o.registrationSecret) {
      throw new KeyboundError("CONFIG_INVALID", NO_LOCAL_CREDENTIALS);
    }
    if (current && !refresh && current !== this.#dropped) {
      o.log.warn(
        "the bot's certificates are expired or not yet valid; joining with the bound key as a recovery",
        {
          expired_at: current.notAfter.toISOString(),
        },
      );
    }
    const hadJoinState = state.joinState !== null;
    const secret = !state.isStatic && !hadJoinState ? o.registrationSecret : undefined;
    const alg = o.certificateKeyAlgorithm ?? "ES256";
    const subjectKey = await generateStoredKeyPair(o.storage, alg);
    // Set once the pending record is being stored: from then on a solution may leave (the
    // join client stores it beside signing the solution and sends only once it is stored).
    let pendingStored = false;
    const pendingOf = (
      p: Omit<PendingJoin, "subject_key" | "created_at" | "version" | "token_name">,
    ) =>
      this.#held.writePending({
        version: 1,
        token_name: o.tokenName,
        ...p,
        subject_key: subjectKey.stored,
        created_at: o.clock.now().toISOString(),
      });
    let result: JoinResult;
    try {
      result = await o.join({
        tokenName: o.tokenName,
        subjectKey: {
          privateKey: subjectKey.privateKey,
          publicKey: subjectKey.publicKey,
          alg,
        },
        ttlSeconds: Math.max(1, Math.round(o.credentialTtlMs / 1000)),
        ...(secret ? { initialJoinSecret: secret } : {}),
        ...(state.joinState ? { previousJoinState: state.joinState } : {}),
        ...(refresh && current
          ? { identity: { certDer: current.certDer, privateKey: current.privateKey } }
          : {}),
        keyStore: state,
        beforeCommit: (p) => {
          pendingStored = true;
          return pendingOf({
            session: p.session,
            bound_public_key: p.boundPublicKey,
            cluster_name: p.clusterName,
          });
        },
      });
    } catch (e) {
      if (!isKeyboundError(e)) throw e;
      if (pendingStored && COPY_MAY_HAVE_COMMITTED.has(e.code)) {
        // Once per join; if the resume fails, the normal retry takes over.
        o.log.info("a copy of this join may have committed; resuming it", { code: e.code });
        const resumed = await this.#resumePending();
        if (resumed) return resumed;
        throw e;
      }
      // A refusal the server answered itself means nothing was committed: the
      // record goes, so a refused join leaves storage as it was. Anything
      // that may hide a lost answer keeps it for the next renewal's resume.
      if (!ANSWER_MAY_BE_LOST.has(e.code)) await this.#held.deletePending();
      throw e;
    }
    const identity = await this.#held.store(result, subjectKey);
    const fields = this.#fields(identity);
    if (refresh) o.log.info("renewed the bot identity", fields);
    else if (current || hadJoinState) {
      o.log.info("recovered: joined again as a new bot instance", fields);
    } else o.log.info("joined the cluster", fields);
    return identity;
  }

  #fields(identity: BotIdentity) {
    return {
      bot: identity.botName,
      bot_instance_id: identity.botInstanceId,
      generation: identity.generation,
      expires: identity.notAfter.toISOString(),
    };
  }
}
