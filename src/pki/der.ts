/**
 * The DER encodings Keybound writes certificates with (X.690 §10: definite,
 * minimal lengths), ECDSA signature conversion between WebCrypto's
 * fixed-width `r||s` and DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3), strict IP
 * address parsing, and an outer length check. Written by hand rather than
 * with asn1-schema: the agent issues a certificate at every start (the TLS
 * root-store proof) and must not load the CommonJS ASN.1 library for it.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { concatBytes, utf8 } from "../util/encoding.ts";
import { LruMap } from "../util/lru.ts";

/** Byte width of a P-256 scalar: WebCrypto's `r||s` is twice this. */
export const P256_SCALAR_BYTES = 32;

/**
 * Encodes one DER element with the given single-byte tag; its content is
 * `parts` in order. One allocation: the header is written in front of the
 * parts, not concatenated with them (a certificate nests some fifty of these).
 */
export function derTlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const p of parts) length += p.length;
  // X.690 §8.1.3: short form below 128, else 0x80 | n followed by n bytes.
  let lengthBytes = 0;
  if (length >= 0x80) { for (let v = length; v > 0; v = Math.floor(v / 256)) lengthBytes++; }
  const out = new Uint8Array(2 + lengthBytes + length);
  out[0] = tag;
  if (length < 0x80) {
    out[1] = length;
  } else {
    out[1] = 0x80 | lengthBytes;
    for (let i = lengthBytes, v = length; i > 0; i--, v = Math.floor(v / 256)) {
      out[1 + i] = v & 0xff;
    }
  }
  let off = 2 + lengthBytes;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** DER tags Keybound writes. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A SEQUENCE of already-encoded elements. */
export function derSequence(...elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return derTlv(TAG.SEQUENCE, ...elements);
}

/** DER BOOLEAN TRUE (FALSE is never written: X.509's booleans default to it). */
export const DER_TRUE: Uint8Array = new Uint8Array([TAG.BOOLEAN, 1, 0xff]);

/** A non-negative INTEGER from an unsigned big-endian value or a safe integer. */
export function derUnsigned(value: Uint8Array | number): Uint8Array<ArrayBuffer> {
  if (typeof value === "number") {
    const bytes: number[] = [];
    for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    value = new Uint8Array(bytes.length ? bytes : [0]);
  }
  return derTlv(TAG.INTEGER, minimalUnsigned(value));
}

/**
 * Encoded OIDs by dotted form. A certificate's subject and extensions name
 * the same few OIDs on every issuance, and encoding one goes through BigInt
 * arithmetic; bounded, as a subject's attribute types come from callers.
 */
const encodedOids = new LruMap<string, Uint8Array<ArrayBuffer>>(256);

/** An OBJECT IDENTIFIER from its dotted form (at least two arcs, first 0–2). */
export function derOid(dotted: string): Uint8Array<ArrayBuffer> {
  let der = encodedOids.get(dotted);
  if (!der) {
    der = encodeOid(dotted);
    encodedOids.set(dotted, der);
  }
  // A copy: callers own what they get.
  return der.slice();
}

function encodeOid(dotted: string): Uint8Array<ArrayBuffer> {
  const arcs = dotted.split(".").map((a) => BigInt(a));
  const out: number[] = [];
  const base128 = (n: bigint) => {
    const groups = [Number(n & 0x7fn)];
    for (let v = n >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  };
  base128(arcs[0] * 40n + arcs[1]);
  for (const arc of arcs.slice(2)) base128(arc);
  return derTlv(TAG.OID, new Uint8Array(out));
}

/** A UTF8String. */
export function derUtf8(text: string): Uint8Array<ArrayBuffer> {
  return derTlv(TAG.UTF8_STRING, utf8(text));
}

/** An OCTET STRING. */
export function derOctets(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return derTlv(TAG.OCTET_STRING, bytes);
}

/**
 * A named-bit BIT STRING (X.690 §11.2.2: trailing zero bits dropped) from
 * flags where `1 << i` is bit `i`, bit 0 the first byte's high bit.
 */
export function derNamedBits(flags: number): Uint8Array<ArrayBuffer> {
  const bits = flags.toString(2).length; // highest set bit + 1
  if (flags === 0) return derTlv(TAG.BIT_STRING, new Uint8Array([0]));
  const bytes = new Uint8Array(1 + Math.ceil(bits / 8));
  bytes[0] = (8 - bits % 8) % 8;
  for (let i = 0; i < bits; i++) if (flags & (1 << i)) bytes[1 + (i >> 3)] |= 0x80 >> (i & 7);
  return derTlv(TAG.BIT_STRING, bytes);
}

/**
 * An RFC 5280 §4.1.2.5 Time: UTCTime for 1950–2049, GeneralizedTime
 * otherwise, to the second. The caller checks the year is 0–9999.
 */
export function derTime(date: Date): Uint8Array<ArrayBuffer> {
  const year = date.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, "0");
  const rest = two(date.getUTCMonth() + 1) + two(date.getUTCDate()) + two(date.getUTCHours()) +
    two(date.getUTCMinutes()) + two(date.getUTCSeconds()) + "Z";
  const utc = year >= 1950 && year <= 2049;
  const text = (utc ? two(year % 100) : String(year).padStart(4, "0")) + rest;
  return derTlv(utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME, utf8(text));
}

/** Strips leading zeros, then adds one back if the top bit would make the value negative. */
export function minimalUnsigned(unsigned: Uint8Array): Uint8Array {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  return v[0] & 0x80 ? concatBytes(new Uint8Array([0]), v) : v;
}

/** Left-pads an unsigned big-endian integer to `width` bytes; null if it does not fit. */
export function fixedWidth(unsigned: Uint8Array, width: number): Uint8Array | null {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  if (v.length > width) return null;
  const out = new Uint8Array(width);
  out.set(v, width - v.length);
  return out;
}

/** Converts WebCrypto's raw ECDSA signature (`r||s`) to DER `ECDSA-Sig-Value`. */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (raw.length !== 2 * P256_SCALAR_BYTES) {
    throw new BadParameterError("ECDSA P-256 signature must be 64 bytes (r||s)");
  }
  const r = derTlv(0x02, minimalUnsigned(raw.subarray(0, P256_SCALAR_BYTES)));
  const s = derTlv(0x02, minimalUnsigned(raw.subarray(P256_SCALAR_BYTES)));
  return derTlv(0x30, r, s);
}

/**
 * Converts DER `ECDSA-Sig-Value` back to raw `r||s`. Strict DER: a lax
 * parser here would let one signature have many encodings (malleability).
 */
export function ecdsaDerToRaw(der: Uint8Array): Uint8Array<ArrayBuffer> {
  const bad = () => new BadParameterError("invalid DER ECDSA signature");
  // Two INTEGERs of at most 33 bytes each always fit a short-form length.
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) throw bad();
  let off = 2;
  const ints: Uint8Array[] = [];
  for (let k = 0; k < 2; k++) {
    if (der[off] !== 0x02) throw bad();
    const len = der[off + 1];
    if (len === undefined || len === 0 || len > P256_SCALAR_BYTES + 1) throw bad();
    const v = der.subarray(off + 2, off + 2 + len);
    if (v.length !== len || v[0] & 0x80) throw bad(); // truncated or negative
    if (len > 1 && v[0] === 0 && !(v[1] & 0x80)) throw bad(); // non-minimal
    ints.push(v);
    off += 2 + len;
  }
  if (off !== der.length) throw bad();
  const r = fixedWidth(ints[0], P256_SCALAR_BYTES);
  const s = fixedWidth(ints[1], P256_SCALAR_BYTES);
  if (!r || !s) throw bad();
  return concatBytes(r, s);
}

function parseIpv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    // Leading zeros are rejected: some resolvers read them as octal.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return null;
    out.push(Number(p));
  }
  return out;
}

function parseIpv6(s: string): number[] | null {
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push(v4[0], v4[1], v4[2], v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        const n = parseInt(p, 16);
        out.push(n >> 8, n & 0xff);
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 16 ? head : null;
  const fill = 16 - head.length - tail.length;
  if (fill < 2) return null; // "::" must stand for at least one group
  return [...head, ...new Array(fill).fill(0), ...tail];
}

/**
 * Parses an IPv4 (4 bytes) or IPv6 (16 bytes) address. Throws
 * `BadParameterError` for anything else, including zones and CIDR suffixes.
 */
export function parseIpAddress(s: string): Uint8Array {
  const bytes = s.includes(":") ? parseIpv6(s) : parseIpv4(s);
  if (!bytes) throw new BadParameterError(`invalid IP address "${s}"`);
  return new Uint8Array(bytes);
}
