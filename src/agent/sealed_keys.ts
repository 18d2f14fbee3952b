/**
 * Sealed keys: the agent's private-key files rest encrypted under a
 * key-encryption key (KEK) with AES-256-GCM, and are only ever turned back
 * into non-extractable CryptoKeys.
 *
 * {@linkcode SealedStorage} wraps any {@linkcode AgentStorage}: the files
 * that hold private keys (the bound key, the key history, the certificate
 * key, the pending-join record and the write journal that can carry them)
 * are sealed on write and unsealed on read; every other file passes
 * through unchanged. The
 * associated data binds each sealed file to its name and to a caller-chosen
 * context (the join token, and on Workers the bot's object name), so a
 * sealed file copied to another name, bot or token does not open.
 *
 * The KEK comes from the runtime: a file or environment variable on Deno
 * ({@linkcode loadKek}), a Worker secret on Workers (see {@linkcode parseKek}).
 * Key files found unencrypted while a KEK is configured are sealed at once. A wrong KEK is a
 * `STORAGE_ERROR` that names the file and leaves it untouched; without a
 * KEK, the wrapper warns once that keys rest unencrypted.
 *
 * @module
 */
import { ConfigError, KeyboundError } from "../errors.ts";
import { sha256 } from "../crypto/random.ts";
import {
  concatBytes,
  fromBase64,
  fromBase64Url,
  fromHex,
  fromUtf8,
  toBase64Url,
  toHex,
  utf8,
} from "../util/encoding.ts";
import type { Logger } from "../util/log.ts";
import { JOURNAL_FILE } from "./journal.ts";
import { type AgentStorage, type ReleaseLock, STORAGE_FILES } from "./storage.ts";

/** Files holding private keys; only these are sealed. */
export const SEALED_FILES: readonly string[] = [
  STORAGE_FILES.boundKey,
  STORAGE_FILES.keyHistory,
  STORAGE_FILES.key,
  STORAGE_FILES.pendingJoin,
  JOURNAL_FILE,
];

/** First bytes of a sealed file: `KEYBOUND-SEALED-V1 <kek id> <iv> <ciphertext>`. */
export const SEALED_MAGIC = "KEYBOUND-SEALED-V1 ";

const KEK_BYTES = 32;
const IV_BYTES = 12;

/** A key-encryption key, imported non-extractable. */
export interface Kek {
  /** AES-256-GCM key (encrypt, decrypt). */
  key: CryptoKey;
  /** Public fingerprint naming the KEK in sealed files and errors (not secret). */
  id: string;
}

/**
 * Imports 32 raw bytes as a KEK. The caller should zero `raw` afterwards.
 * Throws `ConfigError` for any other length.
 */
export async function importKek(raw: Uint8Array, source = "the key-encryption key"): Promise<Kek> {
  if (raw.length !== KEK_BYTES) {
    throw new ConfigError(`${source} must be ${KEK_BYTES} bytes (256 bits), got ${raw.length}`);
  }
  const bytes = new Uint8Array(raw);
  try {
    const key = await crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    const labelled = concatBytes(utf8("keybound-kek-id:"), bytes);
    const id = toHex(await sha256(labelled)).slice(0, 16);
    labelled.fill(0);
    return { key, id };
  } finally {
    bytes.fill(0);
  }
}

/**
 * Parses a KEK from text (a file's content, an environment variable or a
 * Worker secret): 64 hex digits, or base64 / base64url of 32 bytes, with
 * surrounding whitespace ignored. `source` names where it came from in
 * errors, e.g. `TBOT_STORAGE_KEK` or `storage.kek_path /etc/tbot/kek`.
 */
export async function parseKek(text: string, source: string): Promise<Kek> {
  const t = text.trim();
  let raw: Uint8Array;
  try {
    raw = /^[0-9a-fA-F]{64}$/.test(t)
      ? fromHex(t)
      : /[+/=]/.test(t)
      ? fromBase64(t)
      : fromBase64Url(t);
  } catch {
    throw new ConfigError(
      `${source} is not a key: give 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)`,
    );
  }
  try {
    return await importKek(raw, source);
  } finally {
    raw.fill(0);
  }
}

/** Environment variable holding the KEK (hex or base64 of 32 bytes). */
export const ENV_STORAGE_KEK = "TBOT_STORAGE_KEK";
/** Environment variable naming a file that holds the KEK. */
export const ENV_STORAGE_KEK_PATH = "TBOT_STORAGE_KEK_PATH";

/** Where {@linkcode loadKek} may look. */
export interface KekSources {
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** Reads a file as text. */
  readTextFile(path: string): Promise<string>;
  /** A KEK file from the configuration (`storage.kek_path`), if any. */
  kekPath?: string;
}

/**
 * The configured KEK, or null when none is: a file (`kekPath`, else
 * `TBOT_STORAGE_KEK_PATH`) wins over the `TBOT_STORAGE_KEK` variable. Throws
 * `ConfigError` naming the source when it is not a 32-byte key. `env` must
 * throw for a variable it may not read: "unset" would store keys unencrypted.
 */
export async function loadKek(sources: KekSources): Promise<Kek | null> {
  const path = sources.kekPath ?? sources.env(ENV_STORAGE_KEK_PATH);
  if (path) return await parseKek(await sources.readTextFile(path), `the KEK file ${path}`);
  const value = sources.env(ENV_STORAGE_KEK);
  return value ? await parseKek(value, ENV_STORAGE_KEK) : null;
}

/** Options of {@linkcode SealedStorage}. */
export interface SealedStorageOptions {
  /** The KEK, or null to store keys unencrypted (with a warning). */
  kek: Kek | null;
  /** What sealed files are bound to, e.g. `token:example` (never secret). */
  context: string;
  /** Where the one-time warnings go. */
  log: Logger;
}

function associatedData(context: string, name: string): Uint8Array<ArrayBuffer> {
  return utf8(`keybound-sealed-v1\u0000${context}\u0000${name}`);
}

function startsWithMagic(bytes: Uint8Array): boolean {
  if (bytes.length < SEALED_MAGIC.length) return false;
  for (let i = 0; i < SEALED_MAGIC.length; i++) {
    if (bytes[i] !== SEALED_MAGIC.charCodeAt(i)) return false;
  }
  return true;
}

/** An {@linkcode AgentStorage} that seals the private-key files of another. */
export class SealedStorage implements AgentStorage {
  #inner: AgentStorage;
  #o: SealedStorageOptions;
  #warnedUnsealed = false;
  #warnedPlaintext = false;

  /**
   * Wraps `inner`.
   *
   * @param inner the storage holding the files
   * @param options KEK, binding context and logger
   */
  constructor(inner: AgentStorage, options: SealedStorageOptions) {
    this.#inner = inner;
    this.#o = options;
  }

  /** Whether the wrapped storage survives a restart. */
  get persistent(): boolean {
    return this.#inner.persistent;
  }

  /** The wrapped storage's key-object store, if any (its files hold only references). */
  get keyObjects(): AgentStorage["keyObjects"] {
    return this.#inner.keyObjects;
  }

  describe(): string {
    return this.#inner.describe();
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  async read(name: string): Promise<Uint8Array | null> {
    const bytes = await this.#inner.read(name);
    if (bytes === null || !SEALED_FILES.includes(name)) return bytes;
    if (startsWithMagic(bytes)) return await this.#unseal(name, bytes);
    if (this.#o.kek) {
      // A key written before a KEK was configured (or by `tbot keypair create`,
      // which knows no token): seal it now rather than on a rare later write.
      await this.write(name, bytes);
      if (!this.#warnedPlaintext) {
        this.#warnedPlaintext = true;
        this.#o.log.warn("sealed private key files that rested unencrypted", {
          storage: this.describe(),
        });
      }
    }
    return bytes;
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    await this.#inner.write(name, await this.#stored(name, data));
  }

  /** The inner storage's group write, with each private-key file sealed first. */
  get writeGroup(): AgentStorage["writeGroup"] {
    const inner = this.#inner.writeGroup;
    if (!inner) return undefined;
    return async (files) => {
      const stored: Record<string, Uint8Array | string | null> = {};
      for (const [name, data] of Object.entries(files)) {
        stored[name] = data === null ? null : await this.#stored(name, data);
      }
      await inner(stored);
    };
  }

  /** What `data` rests as under `name`: sealed for a private-key file when there is a KEK. */
  async #stored(name: string, data: Uint8Array | string): Promise<Uint8Array | string> {
    if (!SEALED_FILES.includes(name)) return data;
    const kek = this.#o.kek;
    if (!kek) {
      if (!this.#warnedUnsealed) {
        this.#warnedUnsealed = true;
        this.#o.log.warn(
          "private keys rest unencrypted; configure a key-encryption key to seal them",
          { storage: this.describe() },
        );
      }
      return data;
    }
    const plain = typeof data === "string" ? utf8(data) : new Uint8Array(data);
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    try {
      const sealed = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: associatedData(this.#o.context, name) },
          kek.key,
          plain,
        ),
      );
      return `${SEALED_MAGIC}${kek.id} ${toBase64Url(iv)} ${toBase64Url(sealed)}\n`;
    } finally {
      plain.fill(0);
    }
  }

  delete(name: string): Promise<void> {
    return this.#inner.delete(name);
  }

  list(): Promise<string[]> {
    return this.#inner.list();
  }

  tryLock(): Promise<ReleaseLock> {
    return this.#inner.tryLock();
  }

  async #unseal(name: string, bytes: Uint8Array): Promise<Uint8Array> {
    const where = `file "${name}" in ${this.describe()}`;
    const [kekId, ivText, ctText] = fromUtf8(bytes).slice(SEALED_MAGIC.length).trim().split(" ");
    const kek = this.#o.kek;
    if (!kek) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${where} is sealed with a key-encryption key (id ${kekId}) but none is configured (storage.kek_path, ${ENV_STORAGE_KEK_PATH} or ${ENV_STORAGE_KEK}); it was left untouched`,
      );
    }
    if (kekId !== kek.id) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${where} is sealed with another key-encryption key (id ${kekId}, configured ${kek.id}); it was left untouched`,
      );
    }
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          {
            name: "AES-GCM",
            iv: fromBase64Url(ivText ?? ""),
            additionalData: associatedData(this.#o.context, name),
          },
          kek.key,
          fromBase64Url(ctText ?? ""),
        ),
      );
    } catch (cause) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${where} does not unseal: it was altered, or sealed for another bot or token (${this.#o.context}); it was left untouched`,
        { cause },
      );
    }
  }
}

/**
 * Wraps `storage` in a {@linkcode SealedStorage} when it persists; memory
 * storage is returned as is (nothing rests anywhere to seal).
 */
export function sealIfPersistent(
  storage: AgentStorage,
  options: SealedStorageOptions,
): AgentStorage {
  return storage.persistent ? new SealedStorage(storage, options) : storage;
}
