import {
  createStoredKeypair,
  STATIC_ROTATION_REFUSED,
  StaticClientState,
  StoredClientState,
} from "../../src/agent/client_state.ts";
import { JOURNAL_FILE, replayJournal, writeFilesTogether } from "../../src/agent/journal.ts";
import {
  MAX_KEY_HISTORY,
  parseKeyHistory,
  prependKey,
  serializeKeyHistory,
} from "../../src/agent/key_history.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES, writeText } from "../../src/agent/storage.ts";
import { generateStorableKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";

Deno.test("key history: newest first, at most 10, round trip", () => {
  let entries: { time: string; private_key: string }[] = [];
  for (let i = 0; i < 12; i++) {
    entries = prependKey(entries, { time: `t${i}`, private_key: `k${i}` });
  }
  assertEquals(entries.length, MAX_KEY_HISTORY);
  assertEquals(entries[0].time, "t11");
  assertEquals(entries[9].time, "t2");
  assertEquals(parseKeyHistory(serializeKeyHistory(entries)), entries);
  assertEquals(parseKeyHistory('{"entries":null}'), []);
  assertEquals(
    assertThrows(() => parseKeyHistory("not json"), KeyboundError).code,
    "STORAGE_ERROR",
  );
  assertEquals(
    assertThrows(() => parseKeyHistory('{"entries":[{"time":1}]}'), KeyboundError).code,
    "STORAGE_ERROR",
  );
});

Deno.test("client state: a rotation key is in storage when generateRotationKey returns", async () => {
  const storage = new MemoryStorage();
  const state = await StoredClientState.load(storage, silentLogger);
  const publicKey = await state.generateRotationKey();
  const onDisk = parseKeyHistory((await readText(storage, STORAGE_FILES.keyHistory))!);
  assertEquals(onDisk.length, 1);
  const reloaded = await StoredClientState.load(storage, silentLogger);
  assertEquals(reloaded.history[0].authorizedKey, publicKey);
  // Not active yet: only the server's result makes a key active.
  assertEquals(state.activeKey, null);
  assertEquals(await readText(storage, STORAGE_FILES.boundKey), null);
  assert(await state.findPrivateKey(publicKey), "the new key answers challenges at once");
});

Deno.test("client state: eleven rotations keep the ten newest keys, newest first", async () => {
  const storage = new MemoryStorage();
  const state = await StoredClientState.load(storage, silentLogger);
  const keys: string[] = [];
  for (let i = 0; i < 11; i++) keys.push(await state.generateRotationKey());
  const reloaded = await StoredClientState.load(storage, silentLogger);
  assertEquals(reloaded.history.map((k) => k.authorizedKey), keys.slice(1).reverse());
  assertEquals(await reloaded.findPrivateKey(keys[0]), null);
  assert(await reloaded.findPrivateKey(keys[10]));
});

Deno.test("client state: the active key changes only to a key the server names", async () => {
  const storage = new MemoryStorage();
  const state = await StoredClientState.load(storage, silentLogger);
  const first = await state.generateRotationKey();
  const second = await state.generateRotationKey();
  const stranger = await toAuthorizedKey((await generateStorableKeyPair()).publicKey);
  const err = await assertRejects(() => state.prepareResult(stranger, "js1"), KeyboundError);
  assertStringIncludes(err.message, "no matching key found");

  const prepared = await state.prepareResult(first + " comment", "js1");
  assertEquals(state.activeKey, null, "memory changes only on commit");
  assertEquals(Object.keys(prepared.files).sort(), ["bkp_state", "id_bkp", "id_bkp.pub"]);
  await writeFilesTogether(storage, prepared.files);
  prepared.commit();
  assertEquals(state.activeKey?.authorizedKey, first);
  assertEquals(state.joinState, "js1");

  const reloaded = await StoredClientState.load(storage, silentLogger);
  assertEquals(reloaded.activeKey?.authorizedKey, first);
  assertEquals(reloaded.joinState, "js1");
  assertEquals((await readText(storage, STORAGE_FILES.boundPublicKey))?.trim(), first);
  assert(await reloaded.findPrivateKey(second), "older history keys stay usable");

  const same = await reloaded.prepareResult(first, "js2");
  assertEquals(Object.keys(same.files), ["bkp_state"]);
});

Deno.test("client state: a damaged history is tolerated, a damaged id_bkp is an error and kept", async () => {
  const storage = new MemoryStorage();
  await writeText(storage, STORAGE_FILES.keyHistory, "{garbage");
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
  const state = await StoredClientState.load(storage, log);
  assertEquals(state.history.length, 0);
  assertEquals(warnings.length, 1);

  await writeText(
    storage,
    STORAGE_FILES.boundKey,
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
  );
  const e = await assertRejects(() => StoredClientState.load(storage, silentLogger), KeyboundError);
  assertEquals(e.code, "STORAGE_ERROR");
  assertStringIncludes((await readText(storage, STORAGE_FILES.boundKey))!, "AAAA");
});

Deno.test("keypair create: a new key becomes active and older keys stay in history", async () => {
  const storage = new MemoryStorage();
  const a = await createStoredKeypair(storage, silentLogger);
  const b = await createStoredKeypair(storage, silentLogger);
  assertNotEquals(a, b);
  const state = await StoredClientState.load(storage, silentLogger);
  assertEquals(state.activeKey?.authorizedKey, b);
  assertEquals(state.history.map((k) => k.authorizedKey), [b, a]);
});

Deno.test("static key: never rotates, never persists, rejects other keys", async () => {
  const kp = await generateStorableKeyPair();
  const state = await StaticClientState.fromPem(kp.pkcs8Pem);
  const pub = await toAuthorizedKey(kp.publicKey);
  assert(await state.findPrivateKey(pub));
  assertEquals(state.joinState, null);
  const rot = await assertRejects(() => state.generateRotationKey(), KeyboundError);
  assertEquals(rot.message, STATIC_ROTATION_REFUSED);
  assertEquals(rot.code, "STATIC_KEY_ROTATION");
  const other = await toAuthorizedKey((await generateStorableKeyPair()).publicKey);
  await assertRejects(() => state.findPrivateKey(other), KeyboundError, "does not match");
  assertEquals((await state.prepareResult(pub)).files, {});
});

Deno.test("journal: a group write interrupted by a crash is finished at the next start", async () => {
  const storage = new MemoryStorage();
  await writeText(storage, "tlscert", "old cert");
  await writeText(storage, "bkp_state", "old state");
  // The crash happened after the journal was written, before the files were.
  await writeText(
    storage,
    JOURNAL_FILE,
    JSON.stringify({ files: { tlscert: "new cert", bkp_state: "new state" } }),
  );
  assert(await replayJournal(storage));
  assertEquals(await readText(storage, "tlscert"), "new cert");
  assertEquals(await readText(storage, "bkp_state"), "new state");
  assertEquals(await readText(storage, JOURNAL_FILE), null);
  assertEquals(await replayJournal(storage), false);

  await writeText(storage, JOURNAL_FILE, "{broken");
  await assertRejects(() => replayJournal(storage), KeyboundError, "damaged");
  assert(await readText(storage, JOURNAL_FILE), "a damaged journal is kept for inspection");
});

Deno.test("client state: rotating away from an active key missing from the history keeps it there", async () => {
  const storage = new MemoryStorage();
  const kp = await generateStorableKeyPair();
  const active = await toAuthorizedKey(kp.publicKey);
  await writeText(storage, STORAGE_FILES.boundKey, kp.pkcs8Pem);
  const state = await StoredClientState.load(storage, silentLogger);
  const next = await state.generateRotationKey();
  const reloaded = await StoredClientState.load(storage, silentLogger);
  assertEquals(reloaded.history.map((k) => k.authorizedKey), [next, active]);
  assertEquals(state.history.map((k) => k.authorizedKey), [next, active]);
});
