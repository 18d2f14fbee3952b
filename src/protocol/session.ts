/**
 * Sealed join sessions (docs/protocol.md §4): the server keeps no join state
 * in memory; each step's state travels to the client and back as an
 * AES-256-GCM blob under the cluster's session key, so any auth process
 * sharing the backend can continue any join, and a client can neither read
 * nor alter what the server remembered.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import { randomBytes } from "../crypto/random.ts";
import { concatBytes, fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../util/encoding.ts";

/** Additional authenticated data: binds blobs to this purpose and format version. */
export const SESSION_AAD = "keybound-join-session-v1";

const IV_BYTES = 12;

/** Fields every sealed session carries. */
export interface SessionEnvelope {
  /** Session id; its used-marker makes the session single-use. */
  sid: string;
  /** Expiry, epoch seconds. */
  exp: number;
}

function invalid(message: string): KeyboundError {
  return new KeyboundError("SESSION_INVALID", message);
}

/** Seals `payload` as an opaque base64url blob. */
export async function sealSession<T extends SessionEnvelope>(
  key: CryptoKey,
  payload: T,
): Promise<string> {
  const iv = randomBytes(IV_BYTES);
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8(SESSION_AAD) },
    key,
    utf8(JSON.stringify(payload)),
  );
  return toBase64Url(concatBytes(iv, new Uint8Array(ct)));
}

/**
 * Opens a blob made by {@linkcode sealSession}. Throws `SESSION_INVALID` if it
 * is malformed, forged, sealed under another key, or expired at `now` (a
 * null `now` skips the expiry: a resume is bounded by its own record).
 */
export async function openSession<T extends SessionEnvelope>(
  key: CryptoKey,
  blob: string,
  now: Date | null,
): Promise<T> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64Url(blob);
  } catch {
    throw invalid("join session is malformed");
  }
  if (bytes.length <= IV_BYTES + 16) throw invalid("join session is malformed");
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: bytes.subarray(0, IV_BYTES),
        additionalData: utf8(SESSION_AAD),
      },
      key,
      bytes.subarray(IV_BYTES),
    );
  } catch {
    throw invalid("join session is invalid");
  }
  let payload: T;
  try {
    payload = JSON.parse(fromUtf8(new Uint8Array(plain))) as T;
  } catch {
    throw invalid("join session is invalid");
  }
  if (typeof payload?.sid !== "string" || typeof payload.exp !== "number") {
    throw invalid("join session is invalid");
  }
  if (now && Math.floor(now.getTime() / 1000) > payload.exp) {
    throw invalid("join session has expired");
  }
  return payload;
}
