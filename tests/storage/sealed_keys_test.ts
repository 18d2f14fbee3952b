/**
 * Sealed keys: private-key files rest AES-GCM-encrypted under a KEK, bound
 * to their name and context; a wrong KEK or context is a clear error that
 * leaves the files untouched; without a KEK the agent warns once.
 *
 * @module
 */
import { createStoredKeypair, StoredClientState } from "../../src/agent/client_state.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import {
  ENV_STORAGE_KEK,
  ENV_STORAGE_KEK_PATH,
  type Kek,
  loadKek,
  parseKek,
  SEALED_MAGIC,
  SealedStorage,
} from "../../src/agent/sealed_keys.ts";
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { ConfigError, isKeyboundError, KeyboundError } from "../../src/errors.ts";
import { fromUtf8, toBase64, toHex } from "../../src/util/encoding.ts";
import type { Logger } from "../../src/util/log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
}

const randomKek = (): Promise<Kek> =>
  parseKek(toHex(crypto.getRandomValues(new Uint8Array(32))), "test KEK");

async function sealedBot(kek: Kek | null, context = "token:example") {
  const inner = new MemoryStorage();
  const log = recordingLogger();
  const storage = new SealedStorage(inner, { kek, context, log });
  const publicKey = await createStoredKeypair(storage, log);
  return { inner, storage, log, publicKey };
}

Deno.test("parseKek() takes hex, base64 and base64url of 32 bytes; refuses other input", async () => {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const ids = await Promise.all([
    parseKek(toHex(raw), "hex"),
    parseKek(` ${toBase64(raw)}\n`, "base64"),
    parseKek(toBase64(raw).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, ""), "b64url"),
  ]).then((keks) => keks.map((k) => k.id));
  assertEquals(new Set(ids).size, 1, "the same bytes must give the same KEK id");
  assert(!ids[0].includes(toHex(raw).slice(0, 8)), "the id must not reveal key bytes");
  const short = await assertRejects(
    () => parseKek(toHex(raw.slice(0, 16)), "TBOT_STORAGE_KEK"),
    ConfigError,
  );
  assertStringIncludes(short.message, "TBOT_STORAGE_KEK must be 32 bytes");
  await assertRejects(
    () => parseKek("not a key!", "storage.kek_path /etc/kek"),
    ConfigError,
    "storage.kek_path",
  );
});

Deno.test("private-key files rest sealed, other files plain, and keys load non-extractable", async () => {
  const kek = await randomKek();
  const { inner, storage, publicKey } = await sealedBot(kek);
  for (const name of [STORAGE_FILES.boundKey, STORAGE_FILES.keyHistory]) {
    const atRest = fromUtf8((await inner.read(name))!);
    assert(atRest.startsWith(SEALED_MAGIC + kek.id + " "), `${name} is not sealed`);
    assert(!atRest.includes("PRIVATE KEY"), `${name} leaks its PEM`);
  }
  assertEquals(fromUtf8((await inner.read(STORAGE_FILES.boundPublicKey))!), publicKey + "\n");
  const state = await StoredClientState.load(storage, recordingLogger());
  assertEquals(state.activeKey?.authorizedKey, publicKey);
  assertEquals(state.activeKey?.keyPair.privateKey.extractable, false);
  assertEquals(state.history.length, 1);
});

Deno.test("a wrong KEK is a clear error and leaves the sealed key untouched", async () => {
  const { inner } = await sealedBot(await randomKek());
  const before = await inner.read(STORAGE_FILES.boundKey);
  const other = await randomKek();
  const wrong = new SealedStorage(inner, {
    kek: other,
    context: "token:example",
    log: recordingLogger(),
  });
  const err = await assertRejects(
    () => StoredClientState.load(wrong, recordingLogger()),
    KeyboundError,
  );
  assertEquals(err.code, "STORAGE_ERROR");
  assertStringIncludes(err.message, `file "${STORAGE_FILES.boundKey}"`);
  assertStringIncludes(err.message, "another key-encryption key");
  assertStringIncludes(err.message, "left untouched");
  assertEquals(await inner.read(STORAGE_FILES.boundKey), before);
  const none = new SealedStorage(inner, {
    kek: null,
    context: "token:example",
    log: recordingLogger(),
  });
  await assertRejects(() => none.read(STORAGE_FILES.boundKey), KeyboundError, "none is configured");
});

Deno.test("sealed files are bound to their context and name; tampering is detected", async () => {
  const kek = await randomKek();
  const { inner } = await sealedBot(kek, "token:example");
  const otherToken = new SealedStorage(inner, {
    kek,
    context: "token:other",
    log: recordingLogger(),
  });
  await assertRejects(
    () => otherToken.read(STORAGE_FILES.boundKey),
    KeyboundError,
    "does not unseal",
  );

  const same = new SealedStorage(inner, { kek, context: "token:example", log: recordingLogger() });
  await inner.write(STORAGE_FILES.key, (await inner.read(STORAGE_FILES.boundKey))!);
  await assertRejects(() => same.read(STORAGE_FILES.key), KeyboundError, "does not unseal");

  const sealed = fromUtf8((await inner.read(STORAGE_FILES.boundKey))!).trimEnd();
  const flipped = sealed.slice(0, -2) + (sealed.at(-2) === "A" ? "B" : "A") + sealed.at(-1);
  await inner.write(STORAGE_FILES.boundKey, flipped + "\n");
  const e = await assertRejects(() => same.read(STORAGE_FILES.boundKey), KeyboundError);
  assert(isKeyboundError(e, "STORAGE_ERROR") && e.message.includes("altered"), e.message);
});

Deno.test("without a KEK keys rest plain and the storage warns once", async () => {
  const { inner, storage, log } = await sealedBot(null);
  assertStringIncludes(fromUtf8((await inner.read(STORAGE_FILES.boundKey))!), "PRIVATE KEY");
  await storage.write(STORAGE_FILES.key, "k");
  assertEquals(log.warnings.length, 1);
  assertStringIncludes(log.warnings[0], "unencrypted");
});

Deno.test("with a new KEK, plain key files are read and sealed at once, with one warning", async () => {
  const { inner } = await sealedBot(null);
  const plainKey = fromUtf8((await inner.read(STORAGE_FILES.boundKey))!);
  const kek = await randomKek();
  const log = recordingLogger();
  const storage = new SealedStorage(inner, { kek, context: "token:example", log });
  const state = await StoredClientState.load(storage, log);
  assert(state.activeKey !== null, "plain key not loaded");
  assertEquals(log.warnings.length, 1);
  for (const name of [STORAGE_FILES.boundKey, STORAGE_FILES.keyHistory]) {
    assert(fromUtf8((await inner.read(name))!).startsWith(SEALED_MAGIC), `${name} not sealed`);
  }
  assertEquals(fromUtf8((await storage.read(STORAGE_FILES.boundKey))!), plainKey);
});

Deno.test("loadKek() prefers a KEK file over the variable and names a bad source", async () => {
  const kek = "ab".repeat(32);
  const files: Record<string, string> = { "/etc/kek": kek + "\n", "/etc/bad": "short" };
  const sources = (env: Record<string, string>, kekPath?: string) => ({
    env: (n: string) => env[n],
    readTextFile: (p: string) => Promise.resolve(files[p]),
    ...(kekPath ? { kekPath } : {}),
  });
  assertEquals(await loadKek(sources({})), null);
  const fromEnv = await loadKek(sources({ [ENV_STORAGE_KEK]: kek }));
  const fromFile = await loadKek(sources({ [ENV_STORAGE_KEK]: "cd".repeat(32) }, "/etc/kek"));
  assertEquals(fromFile?.id, fromEnv?.id);
  const viaPathVar = await loadKek(sources({ [ENV_STORAGE_KEK_PATH]: "/etc/kek" }));
  assertEquals(viaPathVar?.id, fromEnv?.id);
  await assertRejects(() => loadKek(sources({}, "/etc/bad")), ConfigError, "the KEK file /etc/bad");
});
