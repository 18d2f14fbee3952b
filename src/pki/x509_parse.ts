/**
 * Parsing and signature verification of X.509 certificates, PEM bundles and
 * Teleport-style CA pins. Only Ed25519 and ECDSA P-256/SHA-256 signatures are
 * understood; anything else is rejected as a bad parameter.
 *
 * Parsing checks structure, not trust: chain building, validity windows and
 * unknown critical extensions are the caller's business.
 *
 * @module
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  type Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  Version,
} from "@peculiar/asn1-x509";
import { BadParameterError } from "../errors.ts";
import { algOf, importSpki, type KeyAlgorithm, verify } from "../crypto/keys.ts";
import { toHex } from "../util/encoding.ts";
import { ecdsaDerToRaw } from "./der.ts";
import { readTlv } from "./der_reader.ts";
import { EKU_OIDS, type KeyUsageName, type NameAttribute, SIGNATURE_OIDS } from "./x509.ts";

/** A parsed certificate. Byte fields are views into copies, not into the input. */
export interface ParsedCertificate {
  /** The whole certificate, DER. */
  der: Uint8Array;
  /** X.509 version number as written on certificates (1, 2 or 3). */
  version: number;
  /** Serial number as lowercase hex without leading zero bytes. */
  serialHex: string;
  /** Subject attributes, every attribute of every RDN, in order. */
  subject: NameAttribute[];
  /** Issuer attributes, likewise. */
  issuer: NameAttribute[];
  /** The subject Name DER, for use as the issuer of certificates this one signs. */
  subjectDer: Uint8Array;
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** Imports the subject public key. */
  publicKey(): Promise<CryptoKey>;
  /** basicConstraints CA flag (false when absent). */
  isCA: boolean;
  /** basicConstraints path length, if any. */
  pathLen?: number;
  /** Key usage bits that are set (empty when the extension is absent). */
  keyUsage:
    (KeyUsageName | "nonRepudiation" | "dataEncipherment" | "encipherOnly" | "decipherOnly")[];
  /** Extended key usages: `serverAuth` / `clientAuth`, other purposes as dotted OIDs. */
  extKeyUsage: string[];
  /** DNS SANs. */
  dnsNames: string[];
  /** IP SANs in text form. */
  ipAddresses: string[];
  /** URI SANs. */
  uris: string[];
  /** Subject key identifier, if present. */
  subjectKeyId?: Uint8Array;
  /** Authority key identifier (key ID form), if present. */
  authorityKeyId?: Uint8Array;
  /** The signed TBSCertificate bytes. */
  tbs: Uint8Array;
  /** Signature algorithm. */
  signatureAlgorithm: KeyAlgorithm;
  /** Raw signature: 64 bytes for Ed25519, `r||s` for ECDSA. */
  signature: Uint8Array;
}

function nameAttributes(name: Name): NameAttribute[] {
  return Array.from(name).flatMap((rdn) =>
    Array.from(rdn, (atv) => ({ oid: atv.type, value: atv.value.toString() }))
  );
}

const KEY_USAGE_BITS: [number, ParsedCertificate["keyUsage"][number]][] = [
  [KeyUsageFlags.digitalSignature, "digitalSignature"],
  [KeyUsageFlags.nonRepudiation, "nonRepudiation"],
  [KeyUsageFlags.keyEncipherment, "keyEncipherment"],
  [KeyUsageFlags.dataEncipherment, "dataEncipherment"],
  [KeyUsageFlags.keyAgreement, "keyAgreement"],
  [KeyUsageFlags.keyCertSign, "keyCertSign"],
  [KeyUsageFlags.cRLSign, "cRLSign"],
  [KeyUsageFlags.encipherOnly, "encipherOnly"],
  [KeyUsageFlags.decipherOnly, "decipherOnly"],
];

function sigAlgOf(oid: string): KeyAlgorithm {
  for (const [alg, o] of Object.entries(SIGNATURE_OIDS)) if (o === oid) return alg as KeyAlgorithm;
  throw new BadParameterError(`unsupported certificate signature algorithm ${oid}`);
}

/** Parses a DER certificate; throws `BadParameterError` on anything malformed or unsupported. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const copy = new Uint8Array(der);
  const notOne = (): never => {
    throw new BadParameterError("certificate is not a single DER SEQUENCE");
  };
  // The one DER header reader (also refuses a non-minimal length): the ASN.1 library
  // silently ignores trailing bytes and accepts BER lengths.
  const outer = readTlv(copy, 0, copy.length, notOne);
  if (outer.tag !== 0x30 || outer.end !== copy.length) notOne();
  try {
    return parseInner(copy);
  } catch (cause) {
    if (cause instanceof BadParameterError) throw cause;
    throw new BadParameterError("malformed certificate", { cause });
  }
}

function parseInner(der: Uint8Array<ArrayBuffer>): ParsedCertificate {
  const cert = AsnConvert.parse(der, Certificate);
  const tbs = cert.tbsCertificate;
  if (!cert.tbsCertificateRaw) throw new BadParameterError("certificate has no TBSCertificate");
  const signatureAlgorithm = sigAlgOf(cert.signatureAlgorithm.algorithm);
  // RFC 8410 / RFC 5758: parameters absent; RFC 5280: inner and outer algorithms equal.
  if (
    cert.signatureAlgorithm.parameters !== undefined || tbs.signature.parameters !== undefined ||
    tbs.signature.algorithm !== cert.signatureAlgorithm.algorithm
  ) {
    throw new BadParameterError("certificate signature algorithm identifiers are inconsistent");
  }
  const sigBytes = new Uint8Array(cert.signatureValue);
  let signature: Uint8Array;
  if (signatureAlgorithm === "ES256") signature = ecdsaDerToRaw(sigBytes);
  else if (sigBytes.length === 64) signature = sigBytes;
  else throw new BadParameterError("Ed25519 certificate signature must be 64 bytes");

  const out: ParsedCertificate = {
    der,
    version: tbs.version + 1,
    serialHex: toHex(new Uint8Array(tbs.serialNumber)).replace(/^(00)+(?=.)/, ""),
    subject: nameAttributes(tbs.subject),
    issuer: nameAttributes(tbs.issuer),
    subjectDer: new Uint8Array(AsnConvert.serialize(tbs.subject)),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    spki: new Uint8Array(AsnConvert.serialize(tbs.subjectPublicKeyInfo)),
    publicKey: () => importSpki(out.spki),
    isCA: false,
    keyUsage: [],
    extKeyUsage: [],
    dnsNames: [],
    ipAddresses: [],
    uris: [],
    tbs: new Uint8Array(cert.tbsCertificateRaw),
    signatureAlgorithm,
    signature,
  };
  if (tbs.extensions && tbs.version !== Version.v3) {
    throw new BadParameterError("certificate has extensions but is not version 3");
  }
  const seen = new Set<string>();
  for (const e of tbs.extensions ?? []) {
    if (seen.has(e.extnID)) {
      throw new BadParameterError(`duplicate certificate extension ${e.extnID}`);
    }
    seen.add(e.extnID);
    const value = e.extnValue.buffer;
    switch (e.extnID) {
      case id_ce_basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        out.isCA = bc.cA;
        out.pathLen = bc.pathLenConstraint;
        break;
      }
      case id_ce_keyUsage: {
        const bits = AsnConvert.parse(value, KeyUsage).toNumber();
        out.keyUsage = KEY_USAGE_BITS.filter(([flag]) => bits & flag).map(([, name]) => name);
        break;
      }
      case id_ce_extKeyUsage:
        out.extKeyUsage = Array.from(
          AsnConvert.parse(value, ExtendedKeyUsage),
          (oid) => Object.entries(EKU_OIDS).find(([, o]) => o === oid)?.[0] ?? oid,
        );
        break;
      case id_ce_subjectAltName:
        for (const gn of AsnConvert.parse(value, SubjectAlternativeName)) {
          if (gn.dNSName !== undefined) out.dnsNames.push(gn.dNSName);
          if (gn.iPAddress !== undefined) out.ipAddresses.push(gn.iPAddress);
          if (gn.uniformResourceIdentifier !== undefined) {
            out.uris.push(gn.uniformResourceIdentifier);
          }
        }
        break;
      case id_ce_subjectKeyIdentifier:
        out.subjectKeyId = new Uint8Array(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
        break;
      case id_ce_authorityKeyIdentifier: {
        const kid = AsnConvert.parse(value, AuthorityKeyIdentifier).keyIdentifier;
        if (kid) out.authorityKeyId = new Uint8Array(kid.buffer);
        break;
      }
    }
  }
  return out;
}

/**
 * True if `cert` was signed by `issuerPublicKey`. False (not an error) when
 * the key's algorithm differs from the certificate's signature algorithm.
 */
export async function verifyCertificateSignature(
  cert: ParsedCertificate,
  issuerPublicKey: CryptoKey,
): Promise<boolean> {
  if (algOf(issuerPublicKey) !== cert.signatureAlgorithm) return false;
  return await verify(issuerPublicKey, cert.signature, cert.tbs);
}

export { certificatesFromPem, certificateToPem } from "./pem.ts";
export { spkiPin } from "./cert_fields.ts";
