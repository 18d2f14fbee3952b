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
import { fromUtf8 } from "../util/encoding.ts";
import type { AgentStorage } from "./storage.ts";

/** Keeps key pairs as `CryptoKey` objects, by key id. */
export interface KeyObjectStore {
  /** Stores `keyPair` (its private key non-extractable) under `id`; resolves once durable. */
  put(id: string, keyPair: KeyPair): Promise<void>;
  /** The key pair stored under `id`, or null. */
  get(id: string): Promise<KeyPair | null>;
  /** Every stored id. */
  ids(): Promise<string[]>;
  /** Removes the key pair stored under `id`; no error if there is none. */
  delete(id: string): Promise<void>;
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

const REFERENCE = new RegExp(`${KEY_OBJECT_PREFIX}([A-Za-z0-9_-]+)`, "g");

/**
 * Deletes the key objects that no file of `storage` refers to any more
 * (certificate keys of past renewals, bound keys that left the history).
 * Call it only while no join is in flight in this storage (between
 * renewals, holding the storage lock): a key being generated is put into
 * the store before the file naming it is written. Returns how many it
 * deleted.
 */
export async function pruneKeyObjects(storage: AgentStorage): Promise<number> {
  const objects = storage.keyObjects;
  if (!objects) return 0;
  const referenced = new Set<string>();
  for (const name of await storage.list()) {
    const bytes = await storage.read(name);
    if (!bytes) continue;
    for (const m of fromUtf8(bytes).matchAll(REFERENCE)) referenced.add(m[1]);
  }
  let deleted = 0;
  for (const id of await objects.ids()) {
    if (referenced.has(id)) continue;
    await objects.delete(id);
    deleted++;
  }
  return deleted;
}
