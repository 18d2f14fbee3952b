/**
 * Challenged keys, parsed once per process. A bot's bound key is the same
 * authorized_keys text on every refresh until it rotates; importing it costs
 * little, but its key ID (the challenge's `sub`) is a SHA-256 digest, and
 * `keyId` remembers that per key object. Keeping the object per text makes
 * the second refresh of a bot hash nothing for its challenge.
 *
 * Keyed by the exact text (a parse is a pure function of it); only texts
 * that parse get in; least recently used evicted past the bound.
 *
 * @module
 */
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { LruMap } from "../../util/lru.ts";

/** Most challenged keys remembered per process (a few hundred bytes each). */
export const CHALLENGED_KEY_CACHE_SIZE = 10_000;

const parsed = new LruMap<string, CryptoKey>(CHALLENGED_KEY_CACHE_SIZE);

/** The key of an authorized_keys line the join challenges (or checks a solution with). */
export async function challengedKey(text: string): Promise<CryptoKey> {
  const hit = parsed.get(text);
  if (hit) return hit;
  const key = (await parseAuthorizedKey(text)).key;
  parsed.set(text, key);
  return key;
}
