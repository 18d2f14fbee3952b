/**
 * A strict DER reader (X.690 §10): single-byte tags, definite lengths in their
 * minimal form, elements inside their container; and the one walk of a Name.
 * Enough to read the parts of a certificate the agent needs on start-up and on
 * every renewal (./cert_fields.ts) and to check a Name before it is copied
 * into a certificate (./x509.ts), without loading the CommonJS ASN.1 library.
 *
 * @module
 */
import { toHex } from "../util/encoding.ts";

/** One element: its tag and where its header, content and end are in the input. */
export interface Tlv {
  /** The identifier octet. */
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first content octet. */
  content: number;
  /** Offset just past the element. */
  end: number;
}

/** Called with what is wrong; throws the caller's error. */
export type DerFailure = (what: string) => never;

/** The DER element at `at`, which must end by `limit`. */
export function readTlv(der: Uint8Array, at: number, limit: number, fail: DerFailure): Tlv {
  if (at + 2 > limit) fail("truncated element");
  const tag = der[at];
  if ((tag & 0x1f) === 0x1f) fail("multi-byte tag");
  let len = der[at + 1];
  let content = at + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || content + n > limit) fail("bad length");
    if (der[content] === 0) fail("non-minimal length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[content++];
    if (len < 0x80) fail("non-minimal length");
  }
  const end = content + len;
  if (end > limit) fail("element overruns its container");
  return { tag, start: at, content, end };
}

/** The elements that make up `parent`'s content, which they must fill exactly. */
export function readChildren(der: Uint8Array, parent: Tlv, fail: DerFailure): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.content; at < parent.end;) {
    const t = readTlv(der, at, parent.end, fail);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** The dotted form of an OBJECT IDENTIFIER's content octets. */
export function decodeOid(bytes: Uint8Array, fail: DerFailure): string {
  if (bytes.length === 0 || bytes[bytes.length - 1] & 0x80) fail("bad object identifier");
  // Real OIDs are a few dozen bytes; the bound keeps the big-integer arcs cheap.
  if (bytes.length > 255) fail("object identifier too long");
  const arcs: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const b of bytes) {
    if (fresh && b === 0x80) fail("non-minimal object identifier arc");
    v = (v << 7n) | BigInt(b & 0x7f);
    fresh = !(b & 0x80);
    if (fresh) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * An attribute value as text: the string types Keybound and openssl write
 * (UTF8String, PrintableString, IA5String, TeletexString as Latin-1,
 * BMPString) as the full parser gives them, anything else (UniversalString
 * included) as the hex of its DER.
 */
function attributeText(der: Uint8Array, v: Tlv, fail: DerFailure): string {
  const bytes = der.subarray(v.content, v.end);
  switch (v.tag) {
    case 0x0c:
      try {
        return utf8.decode(bytes);
      } catch {
        return fail("bad UTF8String");
      }
    case 0x13:
    case 0x14:
    case 0x16:
      return String.fromCharCode(...bytes);
    case 0x1e: {
      if (bytes.length % 2) fail("bad BMPString");
      let s = "";
      for (let i = 0; i < bytes.length; i += 2) {
        s += String.fromCharCode(bytes[i] * 256 + bytes[i + 1]);
      }
      return s;
    }
    default:
      return toHex(der.subarray(v.start, v.end));
  }
}

/**
 * The attributes of a Name (SEQUENCE OF SET OF SEQUENCE { OID, value }), every attribute of
 * every RDN in order; `fail` for anything else.
 */
export function readNameAttributes(
  der: Uint8Array,
  name: Tlv,
  fail: DerFailure,
): { oid: string; value: string }[] {
  const out: { oid: string; value: string }[] = [];
  for (const rdn of readChildren(der, name, fail)) {
    if (rdn.tag !== 0x31) fail("bad name");
    const atvs = readChildren(der, rdn, fail);
    if (atvs.length === 0) fail("empty relative distinguished name");
    for (const atv of atvs) {
      const parts = atv.tag === 0x30 ? readChildren(der, atv, fail) : [];
      // A DirectoryString (and every string type a Name carries) is primitive: a constructed
      // value is refused rather than copied through as hex.
      if (parts.length !== 2 || parts[0].tag !== 0x06 || (parts[1].tag & 0x20) !== 0) {
        fail("bad name attribute");
      }
      out.push({
        oid: decodeOid(der.subarray(parts[0].content, parts[0].end), fail),
        value: attributeText(der, parts[1], fail),
      });
    }
  }
  return out;
}
