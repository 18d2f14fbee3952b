/**
 * Randomness and constant-time comparison.
 *
 * @module
 */
import { toHex, utf8 } from "../util/encoding.ts";

/** `n` cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** `n` random bytes as lowercase hex (2n characters). */
export function randomHex(n: number): string {
  return toHex(randomBytes(n));
}

/** A random UUID v4. */
export function randomUuid(): string {
  return crypto.randomUUID();
}

/** SHA-256 of bytes or of the UTF-8 of a string. */
export async function sha256(data: Uint8Array | string): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = typeof data === "string" ? utf8(data) : data;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/**
 * Compares two byte strings in time that depends only on their lengths.
 * Lengths are not secret in any of our uses (fixed-size nonces, hashes).
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Compares two secret strings in constant time by hashing both first, so the
 * comparison time does not even depend on the secret's length.
 */
export async function timingSafeEqualString(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([sha256(a), sha256(b)]);
  return timingSafeEqual(ha, hb);
}
