/**
 * Group writes on a storage that writes several files atomically by itself
 * (`writeGroup`, as Durable Object storage does): one call, no journal file,
 * private-key files sealed on the way in; a storage without it keeps the
 * journal, then writes the files at once. The identity output writes its
 * files at once too, the certificate after all of them.
 *
 * @module
 */
import { writeFilesTogether } from "../../src/agent/journal.ts";
import { JOURNAL_FILE } from "../../src/agent/journal.ts";
import type { BotIdentity } from "../../src/agent/identity.ts";
import { IdentityOutput } from "../../src/agent/outputs/identity_output.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { importKek, SEALED_MAGIC, SealedStorage } from "../../src/agent/sealed_keys.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { fromUtf8 } from "../../src/util/encoding.ts";
import type { Logger } from "../../src/util/log.ts";
import { assert, assertEquals } from "../_assert.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Memory storage with an atomic group write that records each group and every single write. */
class GroupStorage extends MemoryStorage {
  groups: Record<string, Uint8Array | string | null>[] = [];
  singles: string[] = [];
  override write(name: string, data: Uint8Array | string): Promise<void> {
    this.singles.push(name);
    return super.write(name, data);
  }
  readonly writeGroup = async (files: Record<string, Uint8Array | string | null>) => {
    this.groups.push(files);
    for (const [name, data] of Object.entries(files)) {
      if (data === null) await super.delete(name);
      else await super.write(name, data);
    }
  };
}

Deno.test("writeFilesTogether: one atomic group write, no journal, keys sealed", async () => {
  const inner = new GroupStorage();
  await inner.write(STORAGE_FILES.tlsCert, "old");
  inner.singles = [];
  const kek = await importKek(crypto.getRandomValues(new Uint8Array(32)));
  const sealed = new SealedStorage(inner, { kek, context: "token:t", log: quiet });
  await writeFilesTogether(sealed, {
    [STORAGE_FILES.key]: "PRIVATE",
    [STORAGE_FILES.tlsCert]: null,
    [STORAGE_FILES.sshCert]: "cert",
  });
  assertEquals(inner.groups.length, 1);
  assertEquals(inner.singles, [], "nothing written one by one, no journal");
  assertEquals(await inner.read(JOURNAL_FILE), null);
  const key = inner.groups[0][STORAGE_FILES.key];
  assert(typeof key === "string" && key.startsWith(SEALED_MAGIC), "the key is sealed");
  assert(!key.includes("PRIVATE"));
  assertEquals(await readText(sealed, STORAGE_FILES.key), "PRIVATE");
  assertEquals(await inner.read(STORAGE_FILES.tlsCert), null);
  assertEquals(fromUtf8((await inner.read(STORAGE_FILES.sshCert))!), "cert");
});

Deno.test("writeFilesTogether: without writeGroup the journal is written first", async () => {
  const inner = new MemoryStorage();
  const names: string[] = [];
  const write = inner.write.bind(inner);
  inner.write = (name, data) => (names.push(name), write(name, data));
  await writeFilesTogether(inner, { a: "1", b: "2" });
  assertEquals(names, [JOURNAL_FILE, "a", "b"]);
  assertEquals(await inner.read(JOURNAL_FILE), null);
});

/** Memory storage whose writes wait until `release()`; records when each starts and ends. */
class GatedStorage extends MemoryStorage {
  events: string[] = [];
  #gate = Promise.withResolvers<void>();
  gated = new Set<string>();
  release() {
    this.#gate.resolve();
  }
  override async write(name: string, data: Uint8Array | string): Promise<void> {
    this.events.push(`start ${name}`);
    if (this.gated.has(name)) await this.#gate.promise;
    await super.write(name, data);
    this.events.push(`end ${name}`);
  }
  override async delete(name: string): Promise<void> {
    this.events.push(`delete ${name}`);
    await super.delete(name);
  }
}

Deno.test("writeFilesTogether: after the journal, the files are written at once; the journal goes last", async () => {
  const inner = new GatedStorage();
  await inner.write("gone", "x");
  inner.events = [];
  inner.gated = new Set(["a", "b"]);
  const done = writeFilesTogether(inner, { a: "1", b: "2", gone: null });
  // Both writes start although neither can finish: none waits for another.
  for (let i = 0; i < 50 && !inner.events.includes("start b"); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assertEquals(inner.events, [
    `start ${JOURNAL_FILE}`,
    `end ${JOURNAL_FILE}`,
    "start a",
    "start b",
    "delete gone",
  ]);
  inner.release();
  await done;
  assertEquals(inner.events.slice(-1), [`delete ${JOURNAL_FILE}`]);
  assertEquals(fromUtf8((await inner.read("a"))!), "1");
  assertEquals(await inner.read("gone"), null);
});

Deno.test("writeFilesTogether: one failed file keeps the journal, after the other writes ended", async () => {
  const inner = new GatedStorage();
  inner.gated = new Set(["slow"]);
  const write = inner.write.bind(inner);
  inner.write = (name, data) =>
    name === "bad" ? Promise.reject(new Error("disk full")) : write(name, data);
  const done = writeFilesTogether(inner, { bad: "1", slow: "2" });
  let settled = false;
  done.catch(() => {}).finally(() => settled = true);
  await new Promise((r) => setTimeout(r, 20));
  assert(!settled, "it waits for the write still running");
  inner.release();
  let error: unknown;
  await done.catch((e) => error = e);
  assertEquals((error as Error).message, "disk full");
  assert(inner.events.includes("end slow"));
  assert(await inner.read(JOURNAL_FILE) !== null, "the journal stays for the replay");
});

Deno.test("identity output: the files at once, the certificate only after all of them", async () => {
  const dest = new GatedStorage();
  dest.gated = new Set([STORAGE_FILES.key]);
  const identity = {
    keyPem: "KEY",
    publicKeySsh: "ssh-ed25519 AAAA",
    sshCert: "cert",
    tlsCertPem: "TLS",
    tlsCaPems: ["CA"],
    sshCaKeys: ["ssh-ed25519 CA"],
  } as BotIdentity;
  const done = new IdentityOutput("out", dest).write(identity);
  for (let i = 0; i < 50 && !dest.events.includes(`start ${STORAGE_FILES.sshCaCerts}`); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  assert(dest.events.includes(`start ${STORAGE_FILES.sshCaCerts}`), "the others do not wait");
  assert(!dest.events.includes(`start ${STORAGE_FILES.tlsCert}`), "the certificate waits");
  dest.release();
  await done;
  assertEquals(dest.events.slice(-2), [
    `start ${STORAGE_FILES.tlsCert}`,
    `end ${STORAGE_FILES.tlsCert}`,
  ]);
  assertEquals(dest.events.filter((e) => e.startsWith("end")).length, 6);
});
