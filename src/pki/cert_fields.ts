/**
 * The validity, the subject and the SubjectPublicKeyInfo of a certificate,
 * read by walking the DER of its TBSCertificate (RFC 5280 §4.1) instead of a
 * full parse: the agent needs only these, at start-up for its stored
 * certificate and on every renewal for the new one. A full parse with
 * asn1-schema costs 0.7–1.8 ms per certificate, most of a Worker renewal's CPU
 * budget, and loading the CommonJS library costs tbot ~40 ms and ~15 MB.
 *
 * This reads structure, not trust: the caller checks what it read (the SPKI
 * against the key it holds or sent, a signature with {@linkcode signedBy}).
 * tbot's trust decisions (the CA pin's first contact, the cross-signed heal)
 * read what they need here too, so a daemon never keeps the full parser
 * loaded; the server and tctl use `parseCertificate` (./x509_parse.ts).
 *
 * @module
 */
import { algOf, type KeyAlgorithm, verify } from "../crypto/keys.ts";
import { sha256 } from "../crypto/random.ts";
import { BadParameterError, BadServerResponseError } from "../errors.ts";
import { bytesEqual, toHex } from "../util/encoding.ts";
import { ecdsaDerToRaw } from "./der.ts";
import {
  decodeOid,
  type DerFailure,
  readChildren,
  readNameAttributes,
  readTlv,
  type Tlv,
} from "./der_reader.ts";
import { type NameAttribute, SIGNATURE_OIDS } from "./x509.ts";

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

/** The parts of a DER certificate the agent reads, as TLVs; `fail` on any other shape. */
interface CertificateTlvs {
  /** TBSCertificate. */
  tbs: Tlv;
  /** The outer signatureAlgorithm. */
  sigAlg: Tlv;
  /** The signature BIT STRING. */
  sig: Tlv;
  /** TBSCertificate's own signature algorithm. */
  tbsSigAlg: Tlv;
  times: Tlv[];
  subject: Tlv;
  spki: Tlv;
  /** The `[0]` version, when written (absent: v1). */
  version?: Tlv;
  /** What follows the SPKI: the unique identifiers and `[3]` extensions, unchecked. */
  rest: Tlv[];
}

function tbsFields(der: Uint8Array, fail: DerFailure = malformed): CertificateTlvs {
  const cert = readTlv(der, 0, der.length, fail);
  if (cert.tag !== SEQUENCE || cert.end !== der.length) fail("not one DER SEQUENCE");
  const [tbs, sigAlg, sig, ...extra] = readChildren(der, cert, fail);
  if (tbs?.tag !== SEQUENCE || sigAlg?.tag !== SEQUENCE || sig?.tag !== 0x03 || extra.length) {
    fail("not a certificate");
  }
  let fields = readChildren(der, tbs, fail);
  const version = fields[0]?.tag === 0xa0 ? fields[0] : undefined;
  if (version) fields = fields.slice(1);
  const [serial, signature, issuer, validity, subject, spki, ...rest] = fields;
  if (
    serial?.tag !== 0x02 ||
    [signature, issuer, validity, subject, spki].some((f) => f?.tag !== SEQUENCE)
  ) {
    fail("unexpected TBSCertificate field");
  }
  const times = readChildren(der, validity, fail);
  if (times.length !== 2) fail("bad validity");
  return {
    tbs,
    sigAlg,
    sig,
    tbsSigAlg: signature,
    times,
    subject,
    spki,
    ...(version ? { version } : {}),
    rest,
  };
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

/** What {@linkcode readSignedParts} returns: what checking a certificate's signature needs. */
export interface SignedParts {
  /** The signed TBSCertificate DER (a copy). */
  tbs: Uint8Array;
  /** The signature algorithm. */
  signatureAlgorithm: KeyAlgorithm;
  /** Raw signature: 64 bytes for Ed25519, `r||s` for ECDSA P-256. */
  signature: Uint8Array;
  /** SubjectPublicKeyInfo DER (a copy). */
  spki: Uint8Array;
}

function badCertificate(what: string): never {
  throw new BadParameterError(`malformed certificate: ${what}`);
}

/**
 * The signed bytes, signature algorithm, signature and SPKI of a DER
 * certificate: what the CA pin's first contact checks (the pinned CA's SPKI,
 * and that it signed the server's leaf) without loading the full parser for
 * the life of the daemon. Not a certificate validator: extensions, version
 * and times are not decoded. The same signature rules as `parseCertificate`: Ed25519 or
 * ECDSA P-256/SHA-256 only, algorithm parameters absent (RFC 8410 §3,
 * RFC 5758 §3.2), the TBSCertificate's algorithm equal to the outer one
 * (RFC 5280 §4.1.1.2), a strict DER ECDSA signature. Throws
 * `BadParameterError` (as `parseCertificate` does) for anything else.
 */
export function readSignedParts(der: Uint8Array): SignedParts {
  return signedParts(der, tbsFields(der, badCertificate));
}

function signedParts(der: Uint8Array, f: CertificateTlvs): SignedParts {
  const alg = readChildren(der, f.sigAlg, badCertificate);
  if (alg.length !== 1 || alg[0].tag !== 0x06) {
    badCertificate("signature algorithm has parameters");
  }
  if (
    !bytesEqual(
      der.subarray(f.sigAlg.start, f.sigAlg.end),
      der.subarray(f.tbsSigAlg.start, f.tbsSigAlg.end),
    )
  ) {
    badCertificate("signature algorithm identifiers are inconsistent");
  }
  const oid = decodeOid(der.subarray(alg[0].content, alg[0].end), badCertificate);
  const signatureAlgorithm =
    (Object.keys(SIGNATURE_OIDS) as KeyAlgorithm[]).find((a) => SIGNATURE_OIDS[a] === oid) ??
      badCertificate(`unsupported signature algorithm ${oid}`);
  // BIT STRING: an unused-bits octet (0: a signature is whole octets), then the bits.
  if (f.sig.content === f.sig.end || der[f.sig.content] !== 0) badCertificate("bad signature");
  const bits = der.subarray(f.sig.content + 1, f.sig.end);
  let signature: Uint8Array;
  if (signatureAlgorithm === "ES256") signature = ecdsaDerToRaw(bits);
  else if (bits.length === 64) signature = bits.slice();
  else badCertificate("Ed25519 signature must be 64 bytes");
  return {
    tbs: der.slice(f.tbs.start, f.tbs.end),
    signatureAlgorithm,
    signature,
    spki: der.slice(f.spki.start, f.spki.end),
  };
}

/** Whether `key` made the signature of `parts` (false when its algorithm is not the signature's). */
export async function signedBy(key: CryptoKey, parts: SignedParts): Promise<boolean> {
  return algOf(key) === parts.signatureAlgorithm &&
    await verify(key, parts.signature, parts.tbs);
}

/** What {@linkcode readCaCandidate} returns. */
export interface CaCandidate extends SignedParts {
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** basicConstraints cA (false when the extension or the flag is absent). */
  isCA: boolean;
}

const BOOLEAN = 0x01;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const OID_BASIC_CONSTRAINTS = "2.5.29.19";

/** A DER BOOLEAN's value: one octet, 0x00 or 0xFF (X.690 §11.1). */
function readBoolean(der: Uint8Array, t: Tlv): boolean {
  if (t.end - t.content !== 1 || (der[t.content] !== 0 && der[t.content] !== 0xff)) {
    badCertificate("bad BOOLEAN");
  }
  return der[t.content] === 0xff;
}

/**
 * basicConstraints (RFC 5280 §4.2.1.9): SEQUENCE { cA BOOLEAN DEFAULT FALSE,
 * pathLenConstraint INTEGER (0..MAX) OPTIONAL }, strict DER (a written
 * FALSE is a DEFAULT written out, refused).
 */
function readBasicConstraintsCa(der: Uint8Array, value: Tlv): boolean {
  const bc = readTlv(der, value.content, value.end, badCertificate);
  if (bc.tag !== SEQUENCE || bc.end !== value.end) badCertificate("bad basicConstraints");
  const parts = readChildren(der, bc, badCertificate);
  let isCA = false;
  if (parts[0]?.tag === BOOLEAN) {
    isCA = readBoolean(der, parts.shift()!);
    if (!isCA) badCertificate("basicConstraints cA FALSE written out");
  }
  if (parts.length > 0) {
    const pathLen = parts.shift()!;
    const n = pathLen.end - pathLen.content;
    if (
      pathLen.tag !== INTEGER || n === 0 || der[pathLen.content] & 0x80 ||
      (n > 1 && der[pathLen.content] === 0 && !(der[pathLen.content + 1] & 0x80))
    ) {
      badCertificate("bad basicConstraints pathLenConstraint");
    }
  }
  if (parts.length > 0) badCertificate("bad basicConstraints");
  return isCA;
}

/**
 * basicConstraints cA from what follows a TBSCertificate's SPKI: optional
 * `[1]`/`[2]` unique identifiers, then optional `[3]` extensions, only in a
 * v3 certificate, each Extension a strict DER SEQUENCE { OID, critical
 * BOOLEAN DEFAULT FALSE, OCTET STRING }, no extension twice (as the full
 * parser refuses). Other extensions are walked, not decoded.
 */
function caFlag(der: Uint8Array, f: CertificateTlvs): boolean {
  let rest = f.rest;
  if (rest[0]?.tag === 0x81) rest = rest.slice(1); // [1] issuerUniqueID
  if (rest[0]?.tag === 0x82) rest = rest.slice(1); // [2] subjectUniqueID
  if (rest.length === 0) return false;
  const [exts, ...extra] = rest;
  if (exts.tag !== 0xa3 || extra.length) badCertificate("unexpected TBSCertificate field");
  const v = f.version ? readChildren(der, f.version, badCertificate) : [];
  if (
    v.length !== 1 || v[0].tag !== INTEGER || v[0].end - v[0].content !== 1 ||
    der[v[0].content] !== 2
  ) {
    badCertificate("certificate has extensions but is not version 3");
  }
  const [list, ...more] = readChildren(der, exts, badCertificate);
  if (list?.tag !== SEQUENCE || more.length) badCertificate("bad extensions");
  const seen = new Set<string>();
  let isCA = false;
  for (const ext of readChildren(der, list, badCertificate)) {
    const parts = ext.tag === SEQUENCE ? readChildren(der, ext, badCertificate) : [];
    const [id, ...tail] = parts;
    if (tail[0]?.tag === BOOLEAN && !readBoolean(der, tail.shift()!)) {
      badCertificate("extension critical FALSE written out");
    }
    if (id?.tag !== 0x06 || tail.length !== 1 || tail[0].tag !== OCTET_STRING) {
      badCertificate("bad extension");
    }
    const oid = decodeOid(der.subarray(id.content, id.end), badCertificate);
    if (seen.has(oid)) badCertificate(`duplicate certificate extension ${oid}`);
    seen.add(oid);
    if (oid === OID_BASIC_CONSTRAINTS) isCA = readBasicConstraintsCa(der, tail[0]);
  }
  return isCA;
}

/**
 * {@linkcode readSignedParts} plus the validity and the basicConstraints cA
 * flag: what the cross-signed heal (src/agent/trust/cross_signed.ts) reads of
 * the CA certificates it may trust, without loading the full parser into a
 * daemon that healed. The extensions are walked strictly (see `caFlag`); a
 * malformed one, or one present twice, is refused with `BadParameterError`,
 * as `parseCertificate` refuses it. Only basicConstraints is decoded: a
 * certificate whose other extensions' contents are malformed reads here and
 * not there; what matters of it is still checked by its signature.
 */
export function readCaCandidate(der: Uint8Array): CaCandidate {
  const f = tbsFields(der, badCertificate);
  const parts = signedParts(der, f);
  // A bad time is this parse's refusal too: BadParameterError, not the renewal path's error.
  const time = (t: Tlv) => {
    try {
      return readTime(der, t);
    } catch {
      return badCertificate("bad validity time");
    }
  };
  return {
    ...parts,
    notBefore: time(f.times[0]),
    notAfter: time(f.times[1]),
    isCA: caFlag(der, f),
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
