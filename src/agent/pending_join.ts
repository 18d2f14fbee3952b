/**
 * The pending-join record (`pending_join.json`, docs/protocol.md §4.9): what
 * the agent stores, in one atomic write, before it sends an answer after
 * which the server may commit a join — the sealed session, the key the join
 * binds, the cluster name and the new certificate key. If the answer is lost
 * (a crash, a dropped connection, an auth restart), the next renewal resumes
 * the join with it instead of repeating it. The group write that stores a
 * join's result removes it.
 *
 * It holds a private key, so sealed storage seals it like the other key
 * files (src/agent/sealed_keys.ts).
 *
 * @module
 */
import { errorMessage } from "../errors.ts";
import * as z from "zod";
import { importStoredKey, type StoredKeyPair } from "./stored_keys.ts";
import type { Logger } from "../util/log.ts";
import { type AgentStorage, readText, STORAGE_FILES, writeText } from "./storage.ts";

/** The stored record (validated when read). */
export const PendingJoin = z.strictObject({
  /** Record format. */
  version: z.literal(1),
  /** The join token the join used (a record for another token is ignored). */
  token_name: z.string(),
  /** The sealed session of the answer about to be sent. */
  session: z.string(),
  /** The key the join binds if that answer commits (authorized_keys). */
  bound_public_key: z.string(),
  /** Cluster name, from the challenge. */
  cluster_name: z.string(),
  /** The certificate subject key the join's certificates are for, PKCS#8 PEM. Secret. */
  subject_key: z.string(),
  /** RFC 3339 time the record was written. */
  created_at: z.string(),
  /**
   * This client's claim on the committed result (hex), stored before its
   * first resume attempt and reused by every retry.
   */
  resume_id: z.string().optional(),
});
/** A pending-join record. */
export type PendingJoin = z.infer<typeof PendingJoin>;

/** Stores the record (one atomic write). */
export async function writePendingJoin(storage: AgentStorage, record: PendingJoin): Promise<void> {
  await writeText(storage, STORAGE_FILES.pendingJoin, JSON.stringify(record));
}

/**
 * Reads the record of `tokenName`, or null. A record that cannot be read is
 * ignored with a warning (only a resume needs it, and a normal join replaces
 * it); it is not deleted here, so it stays for inspection until then.
 */
export async function readPendingJoin(
  storage: AgentStorage,
  tokenName: string,
  log: Logger,
): Promise<PendingJoin | null> {
  const text = await readText(storage, STORAGE_FILES.pendingJoin);
  if (text === null) return null;
  let parsed: PendingJoin;
  try {
    parsed = PendingJoin.parse(JSON.parse(text));
  } catch (e) {
    log.warn("ignoring an unreadable pending join record", {
      file: STORAGE_FILES.pendingJoin,
      error: errorMessage(e),
    });
    return null;
  }
  if (parsed.token_name !== tokenName) {
    log.warn("ignoring a pending join record of another join token", {
      file: STORAGE_FILES.pendingJoin,
    });
    return null;
  }
  return parsed;
}

/** The record's certificate key, non-extractable, with its stored text for the `key` file. */
export async function pendingSubjectKey(
  storage: AgentStorage,
  record: PendingJoin,
): Promise<StoredKeyPair> {
  return { ...(await importStoredKey(storage, record.subject_key)), stored: record.subject_key };
}
