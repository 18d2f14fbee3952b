/**
 * The validity, the subject and the SubjectPublicKeyInfo of a certificate,
 * read by walking the DER of its TBSCertificate (RFC 5280 §4.1) instead of a
 * full parse: the agent needs only these, at start-up for its stored
 * certificate and on every renewal for the new one. A full parse with
 * asn1-schema costs 0.7–1.8 ms per certificate, most of a Worker renewal's CPU
 * budget, and loading the CommonJS library costs tbot ~40 ms and ~15 MB.
 *
 * This reads structure, not trust: the caller checks what it read (the SPKI
 * against the key it holds or sent). Certificates trusted for anything (a CA,
 * a signature to verify) go through {@linkcode parseCertificate} in
 * ./x509_parse.ts.
 *
 * @module
 */
import { sha256 } from "../crypto/random.ts";
import { BadServerResponseError } from "../errors.ts";
import { toHex } from "../util/encoding.ts";
import { readChildren, readNameAttributes, readTlv, type Tlv } from "./der_reader.ts";
import type { NameAttribute } from "./x509.ts";

/** What {@linkcode readCertificateFields} returns. */
export interface CertificateFields {
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** Subject attributes, every attribute of every RDN, in order. */
  subject: NameAttribute[];
  /** SubjectPublicKeyInfo DER (a copy). */
  spki: Uint8Array;
}

function malformed(what: string): never {
  throw new BadServerResponseError(`malformed certificate: ${what}`);
}

const SEQUENCE = 0x30;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** RFC 5280 §4.1.2.5: UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`. */
function readTime(der: Uint8Array, t: Tlv): Date {
  const text = String.fromCharCode(...der.subarray(t.content, t.end));
  const m = t.tag === UTC_TIME
    ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text)
    : t.tag === GENERALIZED_TIME
    ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text)
    : null;
  if (!m) malformed("bad validity time");
  let year = Number(m[1]);
  if (t.tag === UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [month, day, hour, minute, second] = m.slice(2).map(Number);
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second);
  // Date rolls month 13, Feb 30 or hour 24 over into a later date: such a time is malformed.
  if (
    d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day ||
    d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second
  ) {
    malformed("bad validity time");
  }
  return d;
}

/** The validity times, the subject and the SPKI of a DER certificate, as TLVs. */
function tbsFields(der: Uint8Array): { times: Tlv[]; subject: Tlv; spki: Tlv } {
  const cert = readTlv(der, 0, der.length, malformed);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) malformed("not one DER SEQUENCE");
  const [tbs, sigAlg, sig, ...extra] = readChildren(der, cert, malformed);
  if (tbs?.tag !== SEQUENCE || sigAlg?.tag !== SEQUENCE || sig?.tag !== 0x03 || extra.length) {
    malformed("not a certificate");
  }
  let fields = readChildren(der, tbs, malformed);
  if (fields[0]?.tag === 0xa0) fields = fields.slice(1); // [0] version
  const [serial, signature, issuer, validity, subject, spki] = fields;
  if (
    serial?.tag !== 0x02 ||
    [signature, issuer, validity, subject, spki].some((f) => f?.tag !== SEQUENCE)
  ) {
    malformed("unexpected TBSCertificate field");
  }
  const times = readChildren(der, validity, malformed);
  if (times.length !== 2) malformed("bad validity");
  return { times, subject, spki };
}

/**
 * Reads the validity, the subject and the SPKI of a DER certificate. Throws
 * `BadServerResponseError` if the DER does not have the shape of a
 * certificate (on the renewal path it came from the server, so the server
 * misbehaved; callers reading storage treat any error as an unreadable file).
 */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const f = tbsFields(der);
  return {
    notBefore: readTime(der, f.times[0]),
    notAfter: readTime(der, f.times[1]),
    subject: readNameAttributes(der, f.subject, malformed),
    spki: der.slice(f.spki.start, f.spki.end),
  };
}

/**
 * {@linkcode readCertificateFields} without the subject: for a caller that
 * learns the subject elsewhere (a renewal takes it from the authenticated join
 * result): decoding the subject's attributes is most of the walk (16 µs of
 * 20 for a bot certificate in Deno). The same shape checks and errors.
 */
export function readValidityAndSpki(der: Uint8Array): Omit<CertificateFields, "subject"> {
  const f = tbsFields(der);
  return {
    notBefore: readTime(der, f.times[0]),
    notAfter: readTime(der, f.times[1]),
    spki: der.slice(f.spki.start, f.spki.end),
  };
}

/**
 * CA pin in Teleport's format: `sha256:` and the hex SHA-256 of the
 * certificate's SubjectPublicKeyInfo DER. Accepts anything with an `spki`
 * (a parsed certificate, its fields) or SPKI DER directly.
 */
export async function spkiPin(cert: { spki: Uint8Array } | Uint8Array): Promise<string> {
  const spki = cert instanceof Uint8Array ? cert : cert.spki;
  return "sha256:" + toHex(await sha256(spki));
}
