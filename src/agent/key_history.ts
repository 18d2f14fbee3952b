/**
 * The bound key history file `bkp_key_history.json`, as Teleport writes it:
 * `{"entries":[{"time": RFC 3339, "private_key": PEM}, …]}`, newest first,
 * at most {@linkcode MAX_KEY_HISTORY} entries. Keeping old keys lets the
 * client answer a challenge for a key it rotated away from when the server
 * never saw the rotation complete.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import * as z from "zod";

/** Teleport keeps the ten most recent keys. */
export const MAX_KEY_HISTORY = 10;

/** One stored key. */
export interface KeyHistoryEntry {
  /** When the key was generated (RFC 3339). */
  time: string;
  /** The private key as stored: PKCS#8 PEM, or a key-object reference (./stored_keys.ts). Secret. */
  private_key: string;
}

const HistoryFile = z.object({
  entries: z.array(z.object({ time: z.string(), private_key: z.string().min(1) })).nullable(),
});

/**
 * Parses the history file. Throws `STORAGE_ERROR` when it is not the expected
 * JSON; the caller decides whether that is fatal (Teleport only warns).
 */
export function parseKeyHistory(text: string): KeyHistoryEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new KeyboundError("STORAGE_ERROR", "key history is not valid JSON");
  }
  const r = HistoryFile.safeParse(raw);
  if (!r.success) {
    throw new KeyboundError("STORAGE_ERROR", "key history does not have the expected shape");
  }
  return (r.data.entries ?? []).map((e) => ({ time: e.time, private_key: e.private_key }));
}

/** Serializes entries (already newest first) as the history file. */
export function serializeKeyHistory(entries: readonly KeyHistoryEntry[]): string {
  return JSON.stringify({ entries }, null, 2) + "\n";
}

/** Returns `entries` with `entry` in front, trimmed to {@linkcode MAX_KEY_HISTORY}. */
export function prependKey(
  entries: readonly KeyHistoryEntry[],
  entry: KeyHistoryEntry,
): KeyHistoryEntry[] {
  return [entry, ...entries].slice(0, MAX_KEY_HISTORY);
}
