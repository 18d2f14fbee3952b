/**
 * Byte encodings used across the protocol: base64, base64url, hex and PEM.
 * Only web-standard APIs; jose provides base64url.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { base64url } from "jose";

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Whether the engine has the ES2026 base64 and hex methods of `Uint8Array`
 * (Deno, workerd, Chromium 140+, Firefox 133+). They are what jose uses too,
 * and several times cheaper than building a binary string for `btoa` or
 * joining per-byte strings (7 % of a Durable Object renewal's JavaScript
 * samples went to the portable code). Older engines take that code.
 */
const NATIVE_CODECS = typeof Uint8Array.fromBase64 === "function" &&
  typeof Uint8Array.fromHex === "function" &&
  typeof Uint8Array.prototype.toBase64 === "function" &&
  typeof Uint8Array.prototype.toHex === "function";

/** UTF-8 encodes `s`. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return textEncoder.encode(s) as Uint8Array<ArrayBuffer>;
}

/** Decodes UTF-8, throwing on invalid sequences. */
export function fromUtf8(b: Uint8Array): string {
  return textDecoder.decode(b);
}

/** Standard base64 (with padding). */
export function toBase64(bytes: Uint8Array): string {
  if (NATIVE_CODECS) return bytes.toBase64();
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Decodes standard base64; throws `TypeError` on bad input. */
export function fromBase64(s: string): Uint8Array<ArrayBuffer> {
  const text = s.replace(/\s+/g, "");
  if (NATIVE_CODECS) {
    try {
      return Uint8Array.fromBase64(text) as Uint8Array<ArrayBuffer>;
    } catch {
      throw new BadParameterError("invalid base64");
    }
  }
  let bin: string;
  try {
    bin = atob(text);
  } catch {
    throw new BadParameterError("invalid base64");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Unpadded base64url. */
export function toBase64Url(bytes: Uint8Array): string {
  return base64url.encode(bytes);
}

/** Decodes unpadded base64url; throws `TypeError` on bad input. */
export function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  try {
    return base64url.decode(s) as Uint8Array<ArrayBuffer>;
  } catch {
    throw new BadParameterError("invalid base64url");
  }
}

/**
 * True if two byte strings are equal. For public data (keys, DER, key ids);
 * secrets use `timingSafeEqual` from src/crypto/random.ts.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  if (NATIVE_CODECS) return bytes.toHex();
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Decodes hex; throws `TypeError` on odd length or non-hex characters. */
export function fromHex(s: string): Uint8Array<ArrayBuffer> {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new BadParameterError("invalid hex");
  if (NATIVE_CODECS) return Uint8Array.fromHex(s) as Uint8Array<ArrayBuffer>;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Wraps DER bytes in a PEM block with 64-column lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = toBase64(der).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** All PEM blocks in `text` with their labels, in order. */
export function parsePemBlocks(text: string): { label: string; der: Uint8Array<ArrayBuffer> }[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  const out: { label: string; der: Uint8Array<ArrayBuffer> }[] = [];
  for (const m of text.matchAll(re)) out.push({ label: m[1], der: fromBase64(m[2]) });
  return out;
}

/** The DER of the single PEM block labelled `label`; throws `TypeError` otherwise. */
export function fromPem(label: string, text: string): Uint8Array<ArrayBuffer> {
  const blocks = parsePemBlocks(text).filter((b) => b.label === label);
  if (blocks.length !== 1) throw new BadParameterError(`expected one PEM block "${label}"`);
  return blocks[0].der;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
