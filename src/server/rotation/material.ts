/**
 * Key material of certificate authorities: generating a CA type's key set,
 * importing a stored record into a {@linkcode CertAuthority} (keys become
 * non-extractable) and cross-signing a new host CA key with the old one.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import {
  generateStorableKeyPair,
  importPkcs8,
  importSpki,
  type KeyAlgorithm,
  keyId,
  type KeyPair,
} from "../../crypto/keys.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  issueCertificate,
  NAME_OIDS,
  parseCertificate,
  verifyCertificateSignature,
} from "../../pki/mod.ts";
import { HOST_CA_OU, USER_CA_OU } from "../../protocol/identity_file.ts";
import { X509_NAME_UPPER_BOUND } from "../../protocol/subject.ts";
import { fromBase64, fromPem, toBase64 } from "../../util/encoding.ts";
import type {
  CaType,
  CertAuthority,
  DroppedCaKey,
  JwtCaKey,
  SshCaKey,
  TlsCaKey,
} from "../context.ts";
import type { StoredCa, StoredKeySet } from "./schema.ts";

/** Validity of CA certificates. */
export const CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;

/** OU of the SPIFFE CA's subject, next to the user and host CAs' `user` / `host`. */
export const SPIFFE_CA_OU = "spiffe";

const OU: Record<"user" | "host" | "spiffe", string> = {
  user: USER_CA_OU,
  host: HOST_CA_OU,
  spiffe: SPIFFE_CA_OU,
};

/** The error of a stored CA that does not load. */
export function corruptCa(what: string, cause?: unknown): KeyboundError {
  return new KeyboundError(
    "STORAGE_ERROR",
    `stored ${what} is malformed`,
    cause ? { cause } : undefined,
  );
}

async function storableKey(alg: KeyAlgorithm): Promise<{ keyPair: KeyPair; stored: string }> {
  const kp = await generateStorableKeyPair(alg);
  return {
    keyPair: { privateKey: kp.privateKey, publicKey: kp.publicKey, alg: kp.alg },
    stored: toBase64(fromPem("PRIVATE KEY", kp.pkcs8Pem)),
  };
}

/** Marks the subject of the user CA's Ed25519 X.509 certificate (docs/security.md). */
const ED25519_CA_MARKER = "Ed25519";

export { X509_NAME_UPPER_BOUND };

/**
 * The longest name a new cluster may take: the CA certificates carry it as
 * their organization and common name, the user CA's Ed25519 one with
 * ` Ed25519` appended, and each must stay within X.509's bound.
 */
export const MAX_NEW_CLUSTER_NAME = X509_NAME_UPPER_BOUND - ` ${ED25519_CA_MARKER}`.length;

/** A self-signed CA certificate for a fresh key of `alg`, with its key as stored. */
async function selfSignedTls(
  alg: KeyAlgorithm,
  commonName: string,
  clusterName: string,
  ou: string,
  now: Date,
): Promise<NonNullable<StoredKeySet["tls"]>> {
  const key = await storableKey(alg);
  const certDer = await createSelfSignedCA({
    subject: [
      { oid: NAME_OIDS.commonName, value: commonName },
      { oid: NAME_OIDS.organization, value: clusterName },
      { oid: NAME_OIDS.organizationalUnit, value: ou },
    ],
    keyPair: key.keyPair,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
  });
  return { cert_pem: certificateToPem(certDer), key_pkcs8: key.stored };
}

/**
 * A fresh key set for a CA type: X.509 (P-256: SVIDs and server certificates
 * go to arbitrary TLS stacks, several refuse Ed25519) plus SSH (Ed25519) for
 * user and host, X.509 only for SPIFFE, one JWT key otherwise (Ed25519 for
 * join states, P-256 for JWT-SVIDs, which JWKS consumers widely support).
 * The user CA also gets an Ed25519 X.509 key for the join certificates of
 * Ed25519 bots, which only Keybound verifies: its subject differs from the
 * P-256 certificate's in the common name (`<cluster> Ed25519`), so a chain
 * builder never takes one for the other, and keeps OU `user` so identity
 * files still sort it as a user CA.
 */
export async function newKeySet(
  type: CaType,
  clusterName: string,
  now: Date,
): Promise<StoredKeySet> {
  if (type === "bound_keypair" || type === "jwt") {
    return { jwt: { key_pkcs8: (await storableKey(type === "jwt" ? "ES256" : "EdDSA")).stored } };
  }
  const set: StoredKeySet = {
    tls: await selfSignedTls("ES256", clusterName, clusterName, OU[type], now),
  };
  if (type === "user") {
    const cn = `${clusterName} ${ED25519_CA_MARKER}`;
    set.tls_ed25519 = await selfSignedTls("EdDSA", cn, clusterName, OU[type], now);
  }
  if (type !== "spiffe") set.ssh = { key_pkcs8: (await storableKey("EdDSA")).stored };
  return set;
}

async function importStored(stored: string, what: string): Promise<KeyPair> {
  try {
    return await importPkcs8(fromBase64(stored));
  } catch (cause) {
    throw corruptCa(what, cause);
  }
}

/**
 * A stored X.509 CA key and certificate, imported and checked: the key is of
 * `alg` (each slot holds one algorithm: `tls` P-256, `tls_ed25519` Ed25519,
 * so a malformed record cannot put an Ed25519 certificate in the lists third
 * parties read) and matches its certificate.
 */
async function tlsKeyOf(
  tls: NonNullable<StoredKeySet["tls"]>,
  what: string,
  alg: KeyAlgorithm,
): Promise<TlsCaKey> {
  const keyPair = await importStored(tls.key_pkcs8, what);
  if (keyPair.alg !== alg) throw corruptCa(`${what} (X.509 key is not ${alg})`);
  let certDer: Uint8Array;
  try {
    [certDer] = certificatesFromPem(tls.cert_pem);
  } catch (cause) {
    throw corruptCa(what, cause);
  }
  const cert = parseCertificate(certDer);
  if (!(await verifyCertificateSignature(cert, keyPair.publicKey))) {
    throw corruptCa(`${what} (certificate does not match its key)`);
  }
  // The verified-certificate cache is keyed by this ID and looks it up for every
  // trusted key on each request: computed here, no request pays its digest.
  await keyId(keyPair.publicKey);
  return {
    certDer,
    certPem: certificateToPem(certDer),
    subjectDer: cert.subjectDer,
    notAfter: cert.notAfter,
    keyPair,
  };
}

interface LoadedSet {
  tls?: TlsCaKey;
  tlsEd25519?: TlsCaKey;
  ssh?: SshCaKey;
  jwt?: JwtCaKey;
}

async function loadSet(set: StoredKeySet, what: string): Promise<LoadedSet> {
  const out: LoadedSet = {};
  if (set.tls) out.tls = await tlsKeyOf(set.tls, what, "ES256");
  if (set.tls_ed25519) out.tlsEd25519 = await tlsKeyOf(set.tls_ed25519, what, "EdDSA");
  if (set.ssh) {
    const keyPair = await importStored(set.ssh.key_pkcs8, what);
    out.ssh = { publicKey: await toAuthorizedKey(keyPair.publicKey), keyPair };
  }
  if (set.jwt) {
    const keyPair = await importStored(set.jwt.key_pkcs8, what);
    out.jwt = { kid: await keyId(keyPair.publicKey), keyPair };
  }
  return out;
}

const HALVES: Record<CaType, ("tls" | "ssh" | "jwt")[]> = {
  user: ["tls", "ssh"],
  host: ["tls", "ssh"],
  spiffe: ["tls"],
  bound_keypair: ["jwt"],
  jwt: ["jwt"],
};

async function droppedTlsKey(
  certPem: string,
  what: string,
): Promise<NonNullable<DroppedCaKey["tls"]>> {
  try {
    const cert = parseCertificate(certificatesFromPem(certPem)[0]);
    return {
      certPem,
      publicKey: await cert.publicKey(),
      ...(cert.subjectKeyId ? { keyId: cert.subjectKeyId } : {}),
    };
  } catch (cause) {
    throw corruptCa(`${what} (dropped key)`, cause);
  }
}

/** Imports a stored (already validated) CA record at backend version `version`. */
export async function loadCa(
  type: CaType,
  stored: StoredCa,
  version: string,
): Promise<CertAuthority> {
  const what = `${type} certificate authority`;
  if (stored.type !== type) throw corruptCa(what);
  const active = await loadSet(stored.active, what);
  const extra = stored.additional ? await loadSet(stored.additional, what) : {};
  for (const half of HALVES[type]) {
    if (!active[half] || (stored.additional && !extra[half])) throw corruptCa(what);
  }
  if (type !== "user" && (active.tlsEd25519 || extra.tlsEd25519)) {
    throw corruptCa(`${what} (an Ed25519 X.509 key belongs to the user CA only)`);
  }
  const list = <T>(a: T | undefined, b: T | undefined): T[] =>
    [a, b].filter((x): x is T => x !== undefined);
  const dropped: DroppedCaKey[] = [];
  for (const d of stored.dropped) {
    const entry: DroppedCaKey = { droppedAt: d.dropped_at };
    if (d.tls_cert_pem) entry.tls = await droppedTlsKey(d.tls_cert_pem, what);
    if (d.tls_ed25519_cert_pem) {
      entry.tlsEd25519 = await droppedTlsKey(d.tls_ed25519_cert_pem, what);
    }
    if (d.ssh_public_key) entry.sshPublicKey = d.ssh_public_key;
    if (d.jwt_kid) entry.kid = d.jwt_kid;
    if (d.jwt_spki) {
      try {
        entry.jwtPublicKey = await importSpki(fromBase64(d.jwt_spki));
      } catch (cause) {
        throw corruptCa(`${what} (dropped key)`, cause);
      }
    }
    dropped.push(entry);
  }
  const phase = stored.rotation.phase;
  return {
    type,
    ...(active.tls ? { tls: active.tls } : {}),
    ...(active.ssh ? { ssh: active.ssh } : {}),
    ...(active.jwt ? { jwt: list(active.jwt, extra.jwt) } : {}),
    trustedTls: list(active.tls, extra.tls),
    ...(active.tlsEd25519 ? { tlsEd25519: active.tlsEd25519 } : {}),
    trustedTlsEd25519: list(active.tlsEd25519, extra.tlsEd25519),
    trustedSsh: list(active.ssh, extra.ssh),
    // Until update_servers the server keeps the key clients trusted before the rotation.
    ...(active.tls
      ? { serverTls: phase === "update_clients" && extra.tls ? extra.tls : active.tls }
      : {}),
    rotation: stored.rotation,
    dropped,
    crossSigned: stored.cross_signed.map((c) => c.cert_pem),
    version,
  };
}

/**
 * A certificate for the CA key of `next` (its subject and key) issued by the
 * CA key of `previous`: a client that trusts only `previous` can verify it
 * and so move its trust to `next` (docs/protocol.md §10 `cross_signed`).
 */
export async function crossSign(
  previous: NonNullable<StoredKeySet["tls"]>,
  next: NonNullable<StoredKeySet["tls"]>,
  what: string,
): Promise<string> {
  const issuer = await tlsKeyOf(previous, what, "ES256");
  const subject = parseCertificate(certificatesFromPem(next.cert_pem)[0]);
  const issuerCert = parseCertificate(issuer.certDer);
  const der = await issueCertificate({
    issuer: {
      subject: issuer.subjectDer,
      privateKey: issuer.keyPair.privateKey,
      publicKey: issuer.keyPair.publicKey,
    },
    subject: subject.subject,
    publicKey: await subject.publicKey(),
    publicKeySpki: subject.spki,
    notBefore: subject.notBefore,
    notAfter: new Date(
      Math.min(subject.notAfter.getTime(), issuerCert.notAfter.getTime()),
    ),
    isCA: true,
  });
  return certificateToPem(der);
}
