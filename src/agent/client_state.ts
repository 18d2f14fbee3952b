/**
 * The bound-keypair client state in storage (`id_bkp`, `id_bkp.pub`,
 * `bkp_state`, `bkp_key_history.json`) and the key store the join client
 * calls back into.
 *
 * Private keys are held in memory only as non-extractable CryptoKeys. PEM
 * text is read from storage when a file must be rewritten and dropped right
 * after, so the process never keeps an exportable copy of a bound key.
 *
 * @module
 */
import { importPkcs8Pem, type KeyPair } from "../crypto/keys.ts";
import { timingSafeEqual } from "../crypto/random.ts";
import { authorizedKeyBlob, publicKeyToSshBlob, toAuthorizedKey } from "../crypto/ssh_wire.ts";
import { errorMessage, KeyboundError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import type { BoundKeyStore } from "./join_types.ts";
import { writeFilesTogether } from "./journal.ts";
import {
  type KeyHistoryEntry,
  parseKeyHistory,
  prependKey,
  serializeKeyHistory,
} from "./key_history.ts";
import { type AgentStorage, readText, STORAGE_FILES, writeText } from "./storage.ts";
import { generateStoredKeyPair, importStoredKey } from "./stored_keys.ts";

/** A bound key loaded into memory. */
export interface LoadedBoundKey {
  /** Non-extractable key pair. */
  keyPair: KeyPair;
  /** Public key, authorized_keys form. */
  authorizedKey: string;
  /** SSH wire blob of the public key, for comparisons. */
  blob: Uint8Array;
  /** When it was generated (RFC 3339), if known. */
  time?: string;
}

/** Where the agent's bound keys come from: storage, or a static key. */
export interface ClientState extends BoundKeyStore {
  /** True for a static (preregistered, never rotated, never persisted) key. */
  readonly isStatic: boolean;
  /** The last join state, or null when none is stored (or static). */
  readonly joinState: string | null;
  /** The active bound key, if any. */
  readonly activeKey: LoadedBoundKey | null;
  /**
   * Prepares the state after a successful join: the key the server named
   * becomes active (it must be one this client holds) and the new join state
   * is kept. Returns the storage files to write, and a function that updates
   * memory once they are written (see `journal.ts`).
   */
  prepareResult(authorizedKey: string, joinState: string): Promise<PreparedResult>;
}

/** What {@linkcode ClientState.prepareResult} returns. */
export interface PreparedResult {
  /** Files to write (name → text); empty for a static key. */
  files: Record<string, string>;
  /** Applies the change in memory; call after the files are written. */
  commit(): void;
}

/** Loads a key from its stored text (`storage` resolves key-object references; null: PEM only). */
async function loadKey(
  storage: AgentStorage | null,
  text: string,
  time?: string,
): Promise<LoadedBoundKey> {
  const keyPair = storage ? await importStoredKey(storage, text) : await importPkcs8Pem(text);
  return {
    keyPair,
    authorizedKey: await toAuthorizedKey(keyPair.publicKey),
    blob: await publicKeyToSshBlob(keyPair.publicKey),
    time,
  };
}

function blobOf(authorizedKey: string): Uint8Array | null {
  try {
    // Only compared with known keys' blobs: no need to import the key.
    return authorizedKeyBlob(authorizedKey).blob;
  } catch {
    return null;
  }
}

/** Error for a storage file that exists but cannot be used. */
function corrupt(storage: AgentStorage, name: string, cause: unknown): KeyboundError {
  return new KeyboundError(
    "STORAGE_ERROR",
    `file "${name}" in ${storage.describe()} is not a valid private key; it was left untouched`,
    { cause },
  );
}

/** Client state persisted in the bot's storage (Teleport's `FSClientState`). */
export class StoredClientState implements ClientState {
  readonly isStatic = false;
  #storage: AgentStorage;
  #log: Logger;
  #now: () => Date;
  #active: LoadedBoundKey | null;
  #history: LoadedBoundKey[];
  #joinState: string | null;

  private constructor(
    storage: AgentStorage,
    log: Logger,
    now: () => Date,
    active: LoadedBoundKey | null,
    history: LoadedBoundKey[],
    joinState: string | null,
  ) {
    this.#storage = storage;
    this.#log = log;
    this.#now = now;
    this.#active = active;
    this.#history = history;
    this.#joinState = joinState;
  }

  /**
   * Loads the state. A missing or unreadable history is tolerated with a
   * warning, as in Teleport; an unreadable active key is an error (and the
   * file is never overwritten, so nothing is lost).
   */
  static async load(
    storage: AgentStorage,
    log: Logger,
    now: () => Date = () => new Date(),
  ): Promise<StoredClientState> {
    const activePem = (await readText(storage, STORAGE_FILES.boundKey))?.trim() || null;
    let active: LoadedBoundKey | null = null;
    if (activePem) {
      try {
        active = await loadKey(storage, activePem);
      } catch (cause) {
        throw corrupt(storage, STORAGE_FILES.boundKey, cause);
      }
    }
    const history: LoadedBoundKey[] = [];
    for (const entry of await readHistory(storage, log)) {
      try {
        // The active key is usually also the history's newest entry: the same
        // text is the same key, so it is not imported twice.
        history.push(
          active && entry.private_key.trim() === activePem
            ? { ...active, time: entry.time }
            : await loadKey(storage, entry.private_key, entry.time),
        );
      } catch {
        log.warn("skipping an unreadable entry of the bound key history", {
          file: STORAGE_FILES.keyHistory,
        });
      }
    }
    const joinState = (await readText(storage, STORAGE_FILES.joinState))?.trim() || null;
    return new StoredClientState(storage, log, now, active, history, joinState);
  }

  get joinState(): string | null {
    return this.#joinState;
  }

  get activeKey(): LoadedBoundKey | null {
    return this.#active;
  }

  /** Keys in the history, newest first. */
  get history(): readonly LoadedBoundKey[] {
    return this.#history;
  }

  findPrivateKey(authorizedKey: string): Promise<CryptoKey | null> {
    const wanted = blobOf(authorizedKey);
    if (!wanted) return Promise.resolve(null);
    const candidates = this.#active ? [this.#active, ...this.#history] : this.#history;
    return Promise.resolve(
      candidates.find((k) => timingSafeEqual(k.blob, wanted))?.keyPair.privateKey ?? null,
    );
  }

  async generateRotationKey(): Promise<string> {
    const generated = await generateStoredKeyPair(this.#storage, "EdDSA");
    const time = this.#now().toISOString();
    const entries = prependKey(await this.#historyWithActive(), {
      time,
      private_key: generated.stored,
    });
    // Persist before the public key is returned (and sent): the server may
    // bind this key even if the answer to us is lost.
    await writeText(this.#storage, STORAGE_FILES.keyHistory, serializeKeyHistory(entries));
    const { stored: _dropped, ...keyPair } = generated;
    const loaded: LoadedBoundKey = {
      keyPair,
      authorizedKey: await toAuthorizedKey(keyPair.publicKey),
      blob: await publicKeyToSshBlob(keyPair.publicKey),
      time,
    };
    const older = this.#history.filter((k) => k !== this.#active);
    const active = this.#active && !this.#history.includes(this.#active) ? [this.#active] : [];
    this.#history = [loaded, ...active, ...older].slice(0, entries.length);
    this.#log.info("generated a new bound keypair for rotation; saved to the key history");
    return loaded.authorizedKey;
  }

  async prepareResult(authorizedKey: string, joinState: string): Promise<PreparedResult> {
    const files: Record<string, string> = {};
    if (joinState) files[STORAGE_FILES.joinState] = joinState;
    const wanted = blobOf(authorizedKey);
    let next = this.#active;
    if (!(this.#active && wanted && timingSafeEqual(this.#active.blob, wanted))) {
      next = (wanted && this.#history.find((k) => timingSafeEqual(k.blob, wanted))) || null;
      if (!next) {
        throw new KeyboundError(
          "INTERNAL",
          "fetching key requested by auth: no matching key found in the bound key history",
        );
      }
      files[STORAGE_FILES.boundKey] = await this.#pemOf(next);
      files[STORAGE_FILES.boundPublicKey] = next.authorizedKey + "\n";
    }
    const changed = next !== this.#active;
    return {
      files,
      commit: () => {
        if (joinState) this.#joinState = joinState;
        if (changed && next) {
          this.#active = next;
          this.#log.info("the server bound a new keypair; it is now the active key", {
            public_key: next.authorizedKey,
          });
        }
      },
    };
  }

  /**
   * The stored history, with the active key in front if it is missing (a
   * storage written by another client): the key being rotated away from
   * must stay in the history.
   */
  async #historyWithActive(): Promise<KeyHistoryEntry[]> {
    const entries = await readHistory(this.#storage, this.#log);
    const active = this.#active;
    if (!active || this.#history.some((k) => timingSafeEqual(k.blob, active.blob))) return entries;
    const pem = (await readText(this.#storage, STORAGE_FILES.boundKey))?.trim();
    if (!pem) return entries;
    return [
      { time: active.time ?? this.#now().toISOString(), private_key: pem + "\n" },
      ...entries,
    ];
  }

  /** The PEM of a history key, read back from storage (memory holds no PEM). */
  async #pemOf(key: LoadedBoundKey): Promise<string> {
    for (const e of await readHistory(this.#storage, this.#log)) {
      const loaded = await loadKey(this.#storage, e.private_key).catch(() => null);
      if (loaded && timingSafeEqual(loaded.blob, key.blob)) return e.private_key.trimEnd() + "\n";
    }
    throw new KeyboundError(
      "STORAGE_ERROR",
      `the bound key named by the server is no longer in ${STORAGE_FILES.keyHistory}`,
    );
  }
}

async function readHistory(storage: AgentStorage, log: Logger): Promise<KeyHistoryEntry[]> {
  const text = await readText(storage, STORAGE_FILES.keyHistory);
  if (text === null) return [];
  try {
    return parseKeyHistory(text);
  } catch (e) {
    log.warn("ignoring an unreadable bound key history", {
      file: STORAGE_FILES.keyHistory,
      error: errorMessage(e),
    });
    return [];
  }
}

/**
 * Writes a freshly generated key as the active key (`tbot keypair create`)
 * and puts it first in the history; older keys stay there, so overwriting
 * never loses a key the server may still name. Returns its public key.
 */
export async function createStoredKeypair(
  storage: AgentStorage,
  log: Logger,
  now: () => Date = () => new Date(),
): Promise<string> {
  const generated = await generateStoredKeyPair(storage, "EdDSA");
  const publicKey = await toAuthorizedKey(generated.publicKey);
  const entries = prependKey(await readHistory(storage, log), {
    time: now().toISOString(),
    private_key: generated.stored,
  });
  await writeFilesTogether(storage, {
    [STORAGE_FILES.keyHistory]: serializeKeyHistory(entries),
    [STORAGE_FILES.boundKey]: generated.stored,
    [STORAGE_FILES.boundPublicKey]: publicKey + "\n",
  });
  return publicKey;
}

/** Message Teleport gives when a static key is asked to rotate. */
export const STATIC_ROTATION_REFUSED =
  "static private keys do not support automatic rotation, `rotate_after` must be unset in the token to continue";

/**
 * A static key (`static_private_key_path` or `TBOT_BOUND_KEYPAIR_STATIC_KEY`):
 * never persisted, never rotated, never sends a join state.
 */
export class StaticClientState implements ClientState {
  readonly isStatic = true;
  readonly joinState = null;
  #key: LoadedBoundKey;

  private constructor(key: LoadedBoundKey) {
    this.#key = key;
  }

  /** Imports a static key from its PKCS#8 PEM. */
  static async fromPem(pem: string): Promise<StaticClientState> {
    return new StaticClientState(await loadKey(null, pem));
  }

  get activeKey(): LoadedBoundKey {
    return this.#key;
  }

  findPrivateKey(authorizedKey: string): Promise<CryptoKey | null> {
    const wanted = blobOf(authorizedKey);
    if (wanted && timingSafeEqual(wanted, this.#key.blob)) {
      return Promise.resolve(this.#key.keyPair.privateKey);
    }
    return Promise.reject(
      new KeyboundError(
        "BAD_PARAMETER",
        "the configured static private key does not match the key requested by the server, cannot continue",
      ),
    );
  }

  generateRotationKey(): Promise<string> {
    return Promise.reject(new KeyboundError("STATIC_KEY_ROTATION", STATIC_ROTATION_REFUSED));
  }

  async prepareResult(authorizedKey: string): Promise<PreparedResult> {
    await this.findPrivateKey(authorizedKey);
    return { files: {}, commit: () => {} };
  }
}
