/**
 * Group writes on a storage that writes several files atomically by itself
 * (`writeGroup`, as Durable Object storage does): one call, no journal file,
 * private-key files sealed on the way in; a storage without it keeps the
 * journal.
 *
 * @module
 */
import { writeFilesTogether } from "../../src/agent/journal.ts";
import { JOURNAL_FILE } from "../../src/agent/journal.ts";
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
