/**
 * Obtains and renews the bot's identity with bound-keypair joins, as
 * Teleport's identity service does: a refresh (case D, same bot instance, no
 * recovery consumed) while the certificates are valid, a fresh join
 * otherwise (first join, or a recovery that consumes one and creates a new
 * bot instance).
 *
 * @module
 */
import { generateStorableKeyPair } from "../crypto/keys.ts";
import { KeyboundError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import type { ClientState } from "./client_state.ts";
import type { Clock } from "./clock.ts";
import {
  type BotIdentity,
  identityFromJoin,
  identityIsValid,
  identityStorageFiles,
} from "./identity.ts";
import { writeFilesTogether } from "./journal.ts";
import type { JoinParams, JoinResult } from "./join_types.ts";
import type { TbotMetrics } from "./metrics.ts";
import type { AgentStorage } from "./storage.ts";

/** A join bound to a server and transport: everything but `baseUrl` and `fetch`. */
export type BoundJoin = (params: Omit<JoinParams, "baseUrl" | "fetch">) => Promise<JoinResult>;

/** Message Teleport gives when there is nothing to join with. */
export const NO_LOCAL_CREDENTIALS =
  "could not complete bound keypair joining as no local credentials are available and no " +
  "registration secret was provided; to continue, either generate a keypair with `tbot keypair " +
  "create` and register it with the auth service, or generate a registration secret and provide " +
  "it with onboarding.bound_keypair.registration_secret (or TBOT_REGISTRATION_SECRET)";

/** Options of {@linkcode IdentityService}. */
export interface IdentityServiceOptions {
  /** The bot's storage (already locked). */
  storage: AgentStorage;
  /** Bound keys and join state. */
  clientState: ClientState;
  /** Join token name. */
  tokenName: string;
  /** Requested certificate lifetime, milliseconds. */
  credentialTtlMs: number;
  /** Registration secret, if configured. */
  registrationSecret?: string;
  /** Performs a join. */
  join: BoundJoin;
  /** Time source. */
  clock: Clock;
  /** Logger. */
  log: Logger;
  /** Metrics, for the expiry gauge. */
  metrics?: TbotMetrics;
}

/** Holds the current identity and renews it. */
export class IdentityService {
  #o: IdentityServiceOptions;
  #identity: BotIdentity | null;

  /**
   * Starts from the identity found in storage.
   *
   * @param options dependencies
   * @param stored the identity loaded from storage, if any
   */
  constructor(options: IdentityServiceOptions, stored: BotIdentity | null) {
    this.#o = options;
    this.#identity = stored;
    if (stored) this.#o.metrics?.identityExpiry.set({}, stored.notAfter.getTime() / 1000);
  }

  /** The current identity (possibly expired), or null before the first join. */
  get identity(): BotIdentity | null {
    return this.#identity;
  }

  /** True if the current identity is within its validity. */
  hasValidIdentity(): boolean {
    return this.#identity !== null && identityIsValid(this.#identity, this.#o.clock.now());
  }

  /**
   * One join: a refresh with the current certificate while it is valid,
   * otherwise a fresh join. Persists everything the join changed in one
   * group write before returning the new identity.
   */
  async renew(): Promise<BotIdentity> {
    const o = this.#o;
    const current = this.#identity;
    const refresh = this.hasValidIdentity();
    const state = o.clientState;
    if (!refresh && !state.isStatic && !state.activeKey && !o.registrationSecret) {
      throw new KeyboundError("CONFIG_INVALID", NO_LOCAL_CREDENTIALS);
    }
    if (current && !refresh) {
      o.log.warn(
        "the bot's certificates are expired or not yet valid; joining with the bound key as a recovery",
        {
          expired_at: current.notAfter.toISOString(),
        },
      );
    }
    const hadJoinState = state.joinState !== null;
    const secret = !state.isStatic && !hadJoinState ? o.registrationSecret : undefined;
    const subjectKey = await generateStorableKeyPair("ES256");
    const result = await o.join({
      tokenName: o.tokenName,
      subjectKey: {
        privateKey: subjectKey.privateKey,
        publicKey: subjectKey.publicKey,
        alg: "ES256",
      },
      ttlSeconds: Math.max(1, Math.round(o.credentialTtlMs / 1000)),
      ...(secret ? { initialJoinSecret: secret } : {}),
      ...(state.joinState ? { previousJoinState: state.joinState } : {}),
      ...(refresh && current
        ? { identity: { certDer: current.certDer, privateKey: current.privateKey } }
        : {}),
      keyStore: state,
    });
    const identity = await identityFromJoin(result, subjectKey);
    const prepared = await state.prepareResult(
      result.bound_keypair.public_key,
      result.bound_keypair.join_state,
    );
    await writeFilesTogether(o.storage, {
      ...prepared.files,
      ...(await identityStorageFiles(identity, o.tokenName)),
    });
    prepared.commit();
    this.#identity = identity;
    o.metrics?.identityExpiry.set({}, identity.notAfter.getTime() / 1000);
    const fields = {
      bot: identity.botName,
      bot_instance_id: identity.botInstanceId,
      generation: identity.generation,
      expires: identity.notAfter.toISOString(),
    };
    if (refresh) o.log.info("renewed the bot identity", fields);
    else if (current || hadJoinState) {
      o.log.info("recovered: joined again as a new bot instance", fields);
    } else o.log.info("joined the cluster", fields);
    return identity;
  }
}
