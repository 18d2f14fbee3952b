/**
 * Key-object storage: where the agent storage keeps CryptoKey objects, bound
 * keys and certificate keys rest as references, never as key bytes.
 */
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { createStoredKeypair, StoredClientState } from "../../src/agent/client_state.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import {
  generateStoredKeyPair,
  importStoredKey,
  KEY_OBJECT_PREFIX,
  type KeyObjectStore,
  pruneKeyObjects,
} from "../../src/agent/stored_keys.ts";
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { type KeyPair, publicKeysEqual } from "../../src/crypto/keys.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { fromUtf8 } from "../../src/util/encoding.ts";
import { silentLogger } from "../../src/util/log.ts";

/** Memory storage with a key-object store (structuredClone, as IndexedDB does). */
class KeyObjectMemoryStorage extends MemoryStorage {
  readonly objects = new Map<string, KeyPair>();
  readonly keyObjects: KeyObjectStore = {
    put: (id, kp) => Promise.resolve(void this.objects.set(id, structuredClone(kp))),
    get: (id) => Promise.resolve(this.objects.get(id) ?? null),
    ids: () => Promise.resolve([...this.objects.keys()]),
    delete: (id) => Promise.resolve(void this.objects.delete(id)),
  };
}

async function allText(storage: MemoryStorage): Promise<string> {
  const names = await storage.list();
  return (await Promise.all(names.map(async (n) => fromUtf8((await storage.read(n))!)))).join("\n");
}

Deno.test("key objects: bound keys rest as references, rotate and reload; no key bytes in any file", async () => {
  const storage = new KeyObjectMemoryStorage();
  const publicKey = await createStoredKeypair(storage, silentLogger);
  const state = await StoredClientState.load(storage, silentLogger);
  assertEquals(state.activeKey?.authorizedKey, publicKey);
  assertEquals(state.activeKey?.keyPair.privateKey.extractable, false);
  const rotated = await state.generateRotationKey();
  const reloaded = await StoredClientState.load(storage, silentLogger);
  assert(await reloaded.findPrivateKey(rotated), "the rotation key is not found after reload");
  assert(await reloaded.findPrivateKey(publicKey), "the first key is not found after reload");
  assertEquals(storage.objects.size, 2);
  const text = await allText(storage);
  assert(!text.includes("PRIVATE KEY"), "a PEM key rests in a file");
  assert(
    fromUtf8((await storage.read(STORAGE_FILES.boundKey))!).startsWith(KEY_OBJECT_PREFIX),
    "id_bkp is no reference",
  );
});

Deno.test("key objects: certificate keys round-trip; a dangling reference is STORAGE_ERROR", async () => {
  const storage = new KeyObjectMemoryStorage();
  const kp = await generateStoredKeyPair(storage, "ES256");
  assert(kp.stored.startsWith(KEY_OBJECT_PREFIX), kp.stored);
  const back = await importStoredKey(storage, kp.stored);
  assert(await publicKeysEqual(back.publicKey, kp.publicKey), "another key came back");
  assertEquals(back.privateKey.extractable, false);
  storage.objects.clear();
  const err = await assertRejects(() => importStoredKey(storage, kp.stored));
  assert(isKeyboundError(err, "STORAGE_ERROR"), String(err));
  // A plain storage has no key store: a reference cannot be resolved there.
  await assertRejects(() => importStoredKey(new MemoryStorage(), kp.stored));
});

Deno.test("without a key-object store keys rest as PKCS#8 PEM, as before", async () => {
  const storage = new MemoryStorage();
  const kp = await generateStoredKeyPair(storage, "EdDSA");
  assert(kp.stored.includes("BEGIN PRIVATE KEY"), "not PEM");
  assertEquals((await importStoredKey(storage, kp.stored)).privateKey.extractable, false);
});

Deno.test("pruneKeyObjects deletes only the key objects no file refers to", async () => {
  const storage = new KeyObjectMemoryStorage();
  await createStoredKeypair(storage, silentLogger);
  const state = await StoredClientState.load(storage, silentLogger);
  await state.generateRotationKey(); // in the history file: kept
  const orphan = await generateStoredKeyPair(storage, "ES256"); // named by no file
  const cert = await generateStoredKeyPair(storage, "ES256");
  await storage.write(STORAGE_FILES.key, cert.stored);
  assertEquals(storage.objects.size, 4);
  assertEquals(await pruneKeyObjects(storage), 1);
  assertEquals(storage.objects.size, 3);
  await assertRejects(() => importStoredKey(storage, orphan.stored));
  await importStoredKey(storage, cert.stored);
  const reloaded = await StoredClientState.load(storage, silentLogger);
  assertEquals(reloaded.history.length, 2);
  assertEquals(await pruneKeyObjects(new MemoryStorage()), 0);
});
