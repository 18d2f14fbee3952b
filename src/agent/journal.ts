/**
 * Writes a group of storage files so that a crash midway cannot leave a mix
 * of old and new ones. After a join the certificate, its key, the join state
 * and the active bound key must change together: an old certificate beside
 * the new join state (or the reverse) makes the next join fail a generation
 * or join-state check, and the server locks the token.
 *
 * The group goes first into one journal file (a single atomic write), then
 * into the individual files, then the journal is removed. At startup a
 * journal left by a crash is applied again before anything is read. A
 * storage that writes a group atomically by itself (`writeGroup`) gets the
 * group in one step instead, with no journal.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import { allInOrder } from "../util/all_in_order.ts";
import { type AgentStorage, readText, writeText } from "./storage.ts";

/** Name of the journal file in storage. */
export const JOURNAL_FILE = "pending_write.json";

/** A group of file changes: name → new text, or null to delete the file. */
export type FileGroup = Record<string, string | null>;

/** Writes (and deletes) all `files` as one unit. */
export async function writeFilesTogether(storage: AgentStorage, files: FileGroup): Promise<void> {
  if (storage.writeGroup) return await storage.writeGroup(files);
  await writeText(storage, JOURNAL_FILE, JSON.stringify({ files }));
  await applyJournal(storage, files);
}

async function applyJournal(storage: AgentStorage, files: FileGroup) {
  // The journal is durable, so the files may land in any order: all at once, their fsyncs
  // overlap (one after another, eleven atomic writes took 27-170 ms here; at once 6-16 ms).
  await allInOrder(
    Object.entries(files).map(([name, text]) =>
      text === null ? storage.delete(name) : writeText(storage, name, text)
    ),
  );
  await storage.delete(JOURNAL_FILE);
}

/**
 * Finishes a group write interrupted by a crash. Returns true if there was
 * one. A journal that cannot be parsed is an error: its contents may be the
 * only copy of credentials the server has already moved on to.
 */
export async function replayJournal(storage: AgentStorage): Promise<boolean> {
  const text = await readText(storage, JOURNAL_FILE);
  if (text === null) return false;
  let files: unknown;
  try {
    files = (JSON.parse(text) as { files?: unknown }).files;
  } catch {
    files = undefined;
  }
  if (
    !files || typeof files !== "object" ||
    !Object.values(files).every((v) => typeof v === "string" || v === null) ||
    Object.keys(files).some((k) => k === JOURNAL_FILE || k.includes("/"))
  ) {
    throw new KeyboundError(
      "STORAGE_ERROR",
      `${JOURNAL_FILE} in ${storage.describe()} is damaged; it was left in place for inspection`,
    );
  }
  await applyJournal(storage, files as FileGroup);
  return true;
}
