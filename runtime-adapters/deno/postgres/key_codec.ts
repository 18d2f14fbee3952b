/**
 * Backend keys as PostgreSQL `bytea` whose byte order is the key order.
 *
 * Each part is its UTF-8 bytes, with every 0x00 written as 0x00 0xFF, and
 * ends with a 0x00 terminator. Byte-wise comparison (what `bytea` does) then
 * compares part by part, a shorter key before its extensions, and code points
 * in order. 0xFF never occurs in UTF-8, so the children of a prefix are
 * exactly the keys strictly between `encode(prefix)` and `encode(prefix)`
 * followed by 0xFF: one index range scan.
 *
 * @module
 */
import type { Key } from "../../../src/storage/backend.ts";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The bytes of `key`. */
export function encodeKey(key: Key): Uint8Array {
  const out: number[] = [];
  for (const part of key) {
    for (const b of utf8.encode(part)) {
      out.push(b);
      if (b === 0) out.push(0xff);
    }
    out.push(0);
  }
  return Uint8Array.from(out);
}

/** The key of `bytes` (inverse of {@linkcode encodeKey}); throws on bytes it never writes. */
export function decodeKey(bytes: Uint8Array): string[] {
  const parts: string[] = [];
  let current: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0) {
      current.push(b);
    } else if (bytes[i + 1] === 0xff) {
      current.push(0);
      i++;
    } else {
      parts.push(fromUtf8.decode(Uint8Array.from(current)));
      current = [];
    }
  }
  if (current.length > 0) throw new Error("stored key does not end with a terminator");
  return parts;
}

/** The exclusive bounds of the keys under `prefix` (the prefix key itself excluded). */
export function prefixRange(prefix: Key): { after: Uint8Array; before: Uint8Array } {
  const after = encodeKey(prefix);
  const before = new Uint8Array(after.length + 1);
  before.set(after);
  before[after.length] = 0xff;
  return { after, before };
}
