/**
 * How the agent's private keys (bound keys, certificate keys) rest in its
 * storage. Most storages hold bytes, so a key rests as PKCS#8 PEM text and
 * is imported non-extractable when read. A storage that can keep `CryptoKey`
 * objects as themselves (IndexedDB in a browser) offers a
 * {@linkcode KeyObjectStore}: there a key is generated non-extractable, put
 * into that store, and the file holds only a reference to it
 * (`KEYBOUND-KEY-OBJECT <key id>`), so no private-key bytes ever exist in
 * script, in files or in memory.
 *
 * @module
 */
import {
  generateKeyPair,
  generateStorableKeyPair,
  importPkcs8Pem,
  type KeyAlgorithm,
  keyId,
  type KeyPair,
} from "../crypto/keys.ts";
import { KeyboundError } from "../errors.ts";
import type { AgentStorage } from "./storage.ts";

/** Keeps key pairs as `CryptoKey` objects, by key id. */
export interface KeyObjectStore {
  /** Stores `keyPair` (its private key non-extractable) under `id`; resolves once durable. */
  put(id: string, keyPair: KeyPair): Promise<void>;
  /** The key pair stored under `id`, or null. */
  get(id: string): Promise<KeyPair | null>;
}

/** A key pair and the text a storage file holds for its private key. */
export interface StoredKeyPair extends KeyPair {
  /** PKCS#8 PEM, or a {@linkcode KEY_OBJECT_PREFIX} reference. Treat as secret. */
  stored: string;
}

/** First word of a file that refers to a key in the storage's key-object store. */
export const KEY_OBJECT_PREFIX = "KEYBOUND-KEY-OBJECT ";

/**
 * Generates a key pair to rest in `storage`: put into its key-object store
 * when it has one (never extractable), otherwise as PKCS#8 PEM.
 */
export async function generateStoredKeyPair(
  storage: AgentStorage,
  alg: KeyAlgorithm,
): Promise<StoredKeyPair> {
  const objects = storage.keyObjects;
  if (!objects) {
    const { pkcs8Pem, ...keyPair } = await generateStorableKeyPair(alg);
    return { ...keyPair, stored: pkcs8Pem };
  }
  const keyPair = await generateKeyPair(alg);
  const id = await keyId(keyPair.publicKey);
  await objects.put(id, keyPair);
  return { ...keyPair, stored: `${KEY_OBJECT_PREFIX}${id}\n` };
}

/**
 * Turns a stored private key's text back into a key pair: imports PEM
 * non-extractable, or looks a reference up in the key-object store.
 *
 * @throws KeyboundError `STORAGE_ERROR` when a referenced key is missing or
 *   the storage has no key-object store; import errors for bad PEM
 */
export async function importStoredKey(storage: AgentStorage, stored: string): Promise<KeyPair> {
  const text = stored.trim();
  if (!text.startsWith(KEY_OBJECT_PREFIX)) return await importPkcs8Pem(text);
  const id = text.slice(KEY_OBJECT_PREFIX.length).trim();
  const keyPair = await storage.keyObjects?.get(id);
  if (!keyPair) {
    throw new KeyboundError(
      "STORAGE_ERROR",
      `key object ${id} named in ${storage.describe()} is not in its key store`,
    );
  }
  return keyPair;
}
