/**
 * The validity and the SubjectPublicKeyInfo of a certificate, read by
 * walking the DER headers of its TBSCertificate (RFC 5280 §4.1) instead of a
 * full parse: an agent needs only these on every renewal, and a full parse
 * with asn1-schema costs 0.7–1.8 ms, most of a Worker renewal's CPU budget.
 *
 * This reads structure, not trust: use it only on a certificate just received
 * from the authenticated auth service, for fields the caller then checks (the
 * SPKI against the key it sent). Certificates loaded from storage or trusted
 * for anything go through {@linkcode parseCertificate}.
 *
 * @module
 */
import { BadServerResponseError } from "../errors.ts";

/** What {@linkcode readCertificateFields} returns. */
export interface CertificateFields {
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** SubjectPublicKeyInfo DER (a copy). */
  spki: Uint8Array;
}

interface Tlv {
  tag: number;
  start: number;
  content: number;
  end: number;
}

function malformed(what: string): never {
  throw new BadServerResponseError(`malformed certificate: ${what}`);
}

/** The DER element at `at`, which must end by `limit` (definite lengths, at most 4 length bytes). */
function tlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) malformed("truncated element");
  const tag = der[at];
  let len = der[at + 1];
  let content = at + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || content + n > limit) malformed("bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[content++];
  }
  const end = content + len;
  if (end > limit) malformed("element overruns its container");
  return { tag, start: at, content, end };
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
  const ms = Date.UTC(
    year,
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  if (Number.isNaN(ms)) malformed("bad validity time");
  return new Date(ms);
}

/**
 * Reads the validity and the SPKI of a DER certificate. Throws
 * `BadServerResponseError` if the DER does not have the shape of a certificate (it came from the
 * server, so the server misbehaved).
 */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const cert = tlv(der, 0, der.length);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) malformed("not one DER SEQUENCE");
  const tbs = tlv(der, cert.content, cert.end);
  if (tbs.tag !== SEQUENCE) malformed("no TBSCertificate");
  let at = tbs.content;
  const next = (): Tlv => {
    const t = tlv(der, at, tbs.end);
    at = t.end;
    return t;
  };
  let field = next();
  if (field.tag === 0xa0) field = next(); // [0] version; then the serial number
  const fields = [field, next(), next(), next(), next(), next()];
  const [serial, signature, issuer, validity, subject, spki] = fields;
  if (
    serial.tag !== 0x02 ||
    [signature, issuer, validity, subject, spki].some((f) => f.tag !== SEQUENCE)
  ) {
    malformed("unexpected TBSCertificate field");
  }
  const notBefore = tlv(der, validity.content, validity.end);
  const notAfter = tlv(der, notBefore.end, validity.end);
  if (notAfter.end !== validity.end) malformed("bad validity");
  return {
    notBefore: readTime(der, notBefore),
    notAfter: readTime(der, notAfter),
    spki: der.slice(spki.start, spki.end),
  };
}
