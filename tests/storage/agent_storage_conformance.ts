/**
 * The conformance checks every {@linkcode AgentStorage} adapter must pass:
 * missing files, exact byte round trips, whole-file replacement, delete,
 * sorted listing, and, where the adapter promises them, persistence across a
 * reopen and an exclusive lock.
 *
 * Runtime-agnostic: runs under `deno test` and, bundled, inside a Durable
 * Object in workerd.
 *
 * @module
 */
import type { AgentStorage } from "../../src/agent/storage.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { fromUtf8 } from "../../src/util/encoding.ts";
import { assert, assertJsonEquals } from "../_assert_core.ts";
import { type CaseResult, type NamedCase, runCases } from "./_results.ts";

/** What an adapter promises beyond the common core. */
export interface AgentStorageCapabilities {
  /** Files survive reopening the same location (`persistent` is true). */
  persistent: boolean;
  /** `tryLock` excludes a second holder until released. */
  exclusiveLock: boolean;
}

/** A fresh, empty storage location and a way to open it again. */
export interface AgentStorageLocation {
  /** The storage, initialised. */
  storage: AgentStorage;
  /** Opens a second handle on the same location (a restart or a second agent). */
  reopen(): Promise<AgentStorage>;
  /** Releases everything the location holds. */
  dispose(): Promise<void>;
}

/** Makes a fresh location for one check. */
export type AgentStorageFactory = () => Promise<AgentStorageLocation>;

/** One named check. */
export type AgentStorageCase = NamedCase<AgentStorageCapabilities, AgentStorageLocation>;

const text = async (s: AgentStorage, name: string) => {
  const b = await s.read(name);
  return b === null ? null : fromUtf8(b);
};

/** Every check, in a stable order. */
export const AGENT_STORAGE_CASES: readonly AgentStorageCase[] = [
  {
    name: "a missing file reads as null",
    async run({ storage }) {
      assertJsonEquals(await storage.read("id_bkp"), null);
      assert(!(await storage.list()).includes("id_bkp"), "list() names a file never written");
    },
  },
  {
    name: "strings are stored as UTF-8 and bytes round-trip exactly",
    async run({ storage }) {
      await storage.write("bkp_state", "eyJhbGciOi…ünïcödé");
      assertJsonEquals(await text(storage, "bkp_state"), "eyJhbGciOi…ünïcödé");
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      // "key" holds a private key: wrappers that seal such files must round-trip it too.
      for (const name of ["binary", "key"]) {
        await storage.write(name, all);
        assertJsonEquals(await storage.read(name), all);
      }
      all[0] = 99;
      assertJsonEquals(
        (await storage.read("binary"))?.[0],
        0,
        "storage kept a reference to the input",
      );
    },
  },
  {
    name: "a write replaces the whole file",
    async run({ storage }) {
      await storage.write("tlscert", "x".repeat(5000));
      await storage.write("tlscert", "short");
      assertJsonEquals(await text(storage, "tlscert"), "short");
    },
  },
  {
    name: "delete removes a file and ignores a missing one",
    async run({ storage }) {
      await storage.write("key", "k");
      await storage.delete("key");
      assertJsonEquals(await storage.read("key"), null);
      await storage.delete("key");
      await storage.delete("never-written");
    },
  },
  {
    name: "list names the files present, sorted",
    async run({ storage }) {
      for (const name of ["tlscert", "id_bkp", "bkp_state", "key.pub"]) {
        await storage.write(name, name);
      }
      await storage.delete("key.pub");
      const names = await storage.list();
      // An adapter may keep files of its own (a write test, a lock file) beside the agent's.
      const ours = names.filter((n) => ["bkp_state", "id_bkp", "key.pub", "tlscert"].includes(n));
      assertJsonEquals(ours, ["bkp_state", "id_bkp", "tlscert"]);
      assertJsonEquals(names, [...names].sort(), "list() is not sorted");
    },
  },
  {
    name: "describe() names the location and init() is repeatable",
    async run({ storage }) {
      assert(storage.describe().length > 0, "describe() is empty");
      await storage.init();
      await storage.write("a", "1");
      await storage.init();
      assertJsonEquals(await text(storage, "a"), "1");
    },
  },
  {
    name: "files survive reopening the same location",
    requires: "persistent",
    async run({ storage, reopen }) {
      assert(storage.persistent, "a persistent adapter reports persistent: false");
      await storage.write("id_bkp", "-----BEGIN PRIVATE KEY-----\n");
      await storage.write("bkp_state", "state");
      const again = await reopen();
      assertJsonEquals(await text(again, "id_bkp"), "-----BEGIN PRIVATE KEY-----\n");
      assertJsonEquals(await text(again, "bkp_state"), "state");
    },
  },
  {
    name: "the lock excludes a second agent until released",
    requires: "exclusiveLock",
    async run({ storage, reopen }) {
      const release = await storage.tryLock();
      const second = await reopen();
      let refused: unknown = null;
      try {
        const r = await second.tryLock();
        await r();
      } catch (e) {
        refused = e;
      }
      assert(isKeyboundError(refused, "STORAGE_ERROR"), `second lock: ${String(refused)}`);
      await release();
      const again = await second.tryLock();
      await again();
    },
  },
];

/** Runs every check on fresh locations; never throws. */
export function runAgentStorageConformance(
  factory: AgentStorageFactory,
  capabilities: AgentStorageCapabilities,
): Promise<CaseResult[]> {
  return runCases(AGENT_STORAGE_CASES, capabilities, factory, (l) => l.dispose());
}
