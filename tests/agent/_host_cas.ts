/**
 * Host CAs for agent trust tests, with real keys and signatures: CAs, a CA
 * certificate of one key issued by another (what the server serves in
 * `cross_signed` after a rotation), and TLS server leaves.
 *
 * @module
 */
import { generateKeyPair, type KeyPair } from "../../src/crypto/keys.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  issueCertificate,
  type IssueCertificateOptions,
  NAME_OIDS,
  parseCertificate,
  spkiPin,
} from "../../src/pki/mod.ts";

/** A CA with its key. */
export interface TestCa {
  /** Self-signed certificate, PEM. */
  pem: string;
  /** Its key pair. */
  keyPair: KeyPair;
  /** SPKI pin, as `tctl status` prints it. */
  pin: string;
  /** Subject common name. */
  name: string;
}

const DAY = 24 * 3600_000;

/** A fresh self-signed P-256 CA named `name`. */
export async function newCa(name: string): Promise<TestCa> {
  const keyPair = await generateKeyPair("ES256");
  const now = Date.now();
  const der = await createSelfSignedCA({
    subject: [{ oid: NAME_OIDS.commonName, value: name }],
    keyPair,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
  });
  return { pem: certificateToPem(der), keyPair, pin: await spkiPin(parseCertificate(der)), name };
}

/** A certificate for `publicKey` issued by `ca`, DER. */
function issueBy(
  ca: TestCa,
  name: string,
  publicKey: CryptoKey,
  extra: Partial<IssueCertificateOptions>,
): Promise<Uint8Array> {
  const now = Date.now();
  return issueCertificate({
    issuer: {
      subject: parseCertificate(certificatesFromPem(ca.pem)[0]).subjectDer,
      privateKey: ca.keyPair.privateKey,
      publicKey: ca.keyPair.publicKey,
    },
    subject: [{ oid: NAME_OIDS.commonName, value: name }],
    publicKey,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
    ...extra,
  });
}

/** A CA certificate for `subject`'s key issued by `issuer` (a cross-signature), PEM. */
export async function crossSign(
  issuer: TestCa,
  subject: TestCa,
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<string> {
  const der = await issueBy(issuer, subject.name, subject.keyPair.publicKey, {
    notAfter: new Date(Date.now() + 30 * DAY),
    ...validity,
    isCA: true,
  });
  return certificateToPem(der);
}

/** A TLS server certificate for 127.0.0.1 issued by `ca`: its DER and key pair. */
export async function serverLeaf(ca: TestCa): Promise<{ der: Uint8Array; keyPair: KeyPair }> {
  const keyPair = await generateKeyPair("ES256");
  const der = await issueBy(ca, "auth", keyPair.publicKey, {
    extKeyUsage: ["serverAuth"],
    ipAddresses: ["127.0.0.1"],
  });
  return { der, keyPair };
}
