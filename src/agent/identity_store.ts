/**
 * {@linkcode IdentityStore}: what an `IdentityService` holds, in memory and
 * in the bot's storage: the current identity, the pending-join record of a
 * join whose answer may be lost (docs/protocol.md §4.9), and the group write
 * that stores a join's result and removes that record.
 *
 * @module
 */
import { type BotIdentity, identityFromJoin, identityStorageFiles } from "./identity.ts";
import type { IdentityServiceOptions } from "./identity_service_options.ts";
import { writeFilesTogether } from "./journal.ts";
import type { JoinResult } from "./join_types.ts";
import { type PendingJoin, readPendingJoin, writePendingJoin } from "./pending_join.ts";
import { STORAGE_FILES } from "./storage.ts";
import type { StoredKeyPair } from "./stored_keys.ts";
import { trustBundleFiles } from "./trust/host_trust.ts";

/** One bot's current identity and its pending-join record. */
export class IdentityStore {
  #o: IdentityServiceOptions;
  #identity: BotIdentity | null;
  /**
   * True while storage is known to hold no pending-join record: this service
   * removed it or found none, and nothing else writes this storage (tbot holds
   * its lock; a Durable Object is the only user of its own). Spares every
   * renewal a storage read (~3 % of a Durable Object renewal's CPU).
   */
  #noPendingJoin = false;

  /**
   * Starts from the identity found in storage.
   *
   * @param options the identity service's options
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

  /** True if a pending-join record is stored (read from storage every time). */
  async hasPendingJoin(): Promise<boolean> {
    return (await readPendingJoin(this.#o.storage, this.#o.tokenName, this.#o.log)) !== null;
  }

  /** The stored pending-join record; null without a read while storage is known to hold none. */
  async readPending(): Promise<PendingJoin | null> {
    const o = this.#o;
    if (this.#noPendingJoin) return null;
    const pending = await readPendingJoin(o.storage, o.tokenName, o.log);
    if (!pending) {
      this.#noPendingJoin = true;
      return null;
    }
    return pending;
  }

  /** Stores the pending-join record. */
  async writePending(record: PendingJoin): Promise<void> {
    this.#noPendingJoin = false;
    await writePendingJoin(this.#o.storage, record);
  }

  /** Removes the pending-join record. */
  async deletePending(): Promise<void> {
    await this.#o.storage.delete(STORAGE_FILES.pendingJoin);
    this.#noPendingJoin = true;
  }

  /** Stores a join's result in one group write that also removes the pending record. */
  async store(result: JoinResult, subjectKey: StoredKeyPair): Promise<BotIdentity> {
    const o = this.#o;
    const identity = await identityFromJoin(result, subjectKey);
    const prepared = await o.clientState.prepareResult(
      result.bound_keypair.public_key,
      result.bound_keypair.join_state,
    );
    const bundle = result.trust_bundle;
    await writeFilesTogether(o.storage, {
      ...prepared.files,
      ...(await identityStorageFiles(identity, o.tokenName)),
      ...(bundle ? trustBundleFiles(bundle, o.clock.now()) : {}),
      [STORAGE_FILES.pendingJoin]: null,
    });
    prepared.commit();
    this.#noPendingJoin = true;
    if (bundle) o.onHostCas?.(bundle.host.tls_ca_certs);
    this.#identity = identity;
    o.metrics?.identityExpiry.set({}, identity.notAfter.getTime() / 1000);
    return identity;
  }
}
