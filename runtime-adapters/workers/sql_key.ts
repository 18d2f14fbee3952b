/**
 * Maps Backend keys (string tuples) to SQLite TEXT so that SQLite's byte-wise
 * ordering equals tuple ordering: each part becomes the lowercase hex of its
 * UTF-8 bytes, and parts are joined with "." (which sorts below every hex
 * digit, so a shorter tuple sorts before its extensions). Hex also keeps NUL
 * and other control characters out of SQL text.
 *
 * @module
 */
import { fromHex, fromUtf8, toHex, utf8 } from "../../src/util/encoding.ts";
import type { Key } from "../../src/storage/backend.ts";

const SEPARATOR = ".";
// The character right after SEPARATOR: upper bound of a prefix range.
const AFTER_SEPARATOR = "/";

/** Encodes `key` as order-preserving SQL text. */
export function encodeSqlKey(key: Key): string {
  return key.map((part) => toHex(utf8(part))).join(SEPARATOR);
}

/** Inverts {@linkcode encodeSqlKey}. */
export function decodeSqlKey(text: string): string[] {
  return text.split(SEPARATOR).map((part) => fromUtf8(fromHex(part)));
}

/**
 * The half-open range `[low, high)` of encoded keys strictly under `prefix`
 * (the prefix key itself excluded, as in Deno KV); null means unbounded.
 */
export function sqlPrefixRange(prefix: Key): { low: string; high: string } | null {
  if (prefix.length === 0) return null;
  const base = encodeSqlKey(prefix);
  return { low: base + SEPARATOR, high: base + AFTER_SEPARATOR };
}
