/**
 * The bot's own identity (certificate subject key, X.509 and SSH
 * certificates, CA material) and its files in storage, named as Teleport
 * names them: `key`, `key.pub`, `key-cert.pub`, `tlscert`, `tlscacerts`,
 * `sshcacerts`, `tokenhash`.
 *
 * @module
 */
import { exportSpki } from "../crypto/keys.ts";
import { sha256, timingSafeEqual } from "../crypto/random.ts";
import { toAuthorizedKey } from "../crypto/ssh_wire.ts";
import { BadServerResponseError, errorMessage, KeyboundError } from "../errors.ts";
import { readCertificateFields, readValidityAndSpki } from "../pki/cert_fields.ts";
import { certificatesFromPem, certificateToPem } from "../pki/pem.ts";
import type { JoinResult } from "../protocol/messages.ts";
import { identityFromSubject } from "../protocol/subject.ts";
import { toHex } from "../util/encoding.ts";
import type { Logger } from "../util/log.ts";
import { type AgentStorage, readText, STORAGE_FILES } from "./storage.ts";
import { importStoredKey, type StoredKeyPair } from "./stored_keys.ts";

/** An identity the agent holds. */
export interface BotIdentity {
  /**
   * Certificate subject key as stored: PKCS#8 PEM (outputs write it as
   * `key`), or a key-object reference where the storage keeps key objects
   * (./stored_keys.ts). Secret.
   */
  keyPem: string;
  /** The same key, imported non-extractable, for signed requests. */
  privateKey: CryptoKey;
  /** Subject public key, authorized_keys line. */
  publicKeySsh: string;
  /** X.509 client certificate, PEM. */
  tlsCertPem: string;
  /** The same, DER. */
  certDer: Uint8Array;
  /** OpenSSH user certificate line. */
  sshCert: string;
  /** User CA certificates, PEM. */
  tlsCaPems: string[];
  /** User CA SSH public keys, authorized_keys lines. */
  sshCaKeys: string[];
  /** Certificate validity start. */
  notBefore: Date;
  /** Certificate validity end. */
  notAfter: Date;
  /** Bot name (from the certificate). */
  botName: string;
  /** Bot instance id (from the certificate). */
  botInstanceId: string;
  /** Generation counter (from the certificate). */
  generation: number;
}

/**
 * The last token name hashed, and its hash: an agent has one token and
 * stores its hash with every renewal's files, where a WebCrypto digest (a
 * round trip to WebCrypto's threads) would wait on the renewal's path.
 */
let lastTokenHash: { tokenName: string; hash: Promise<string> } | undefined;

/** Hex SHA-256 of the token name, as stored in `tokenhash`. */
export function tokenHash(tokenName: string): Promise<string> {
  if (lastTokenHash?.tokenName !== tokenName) {
    const hash = sha256(tokenName).then(toHex);
    lastTokenHash = { tokenName, hash };
    hash.catch(() => {
      if (lastTokenHash?.hash === hash) lastTokenHash = undefined;
    });
  }
  return lastTokenHash.hash;
}

function fromCertificate(certPem: string): {
  fields: Pick<
    BotIdentity,
    "certDer" | "notBefore" | "notAfter" | "botName" | "botInstanceId" | "generation"
  >;
  spki: Uint8Array;
} {
  const certDer = certificatesFromPem(certPem)[0];
  // The fields the agent needs, without the full parser: the SPKI is then
  // checked against the stored key, and the server verifies the rest.
  const cert = readCertificateFields(certDer);
  const subject = identityFromSubject(cert.subject);
  if (typeof subject === "string" || !subject.botName || !subject.botInstanceId) {
    throw new KeyboundError(
      "BAD_PARAMETER",
      `the certificate is not a bot certificate: ${
        typeof subject === "string" ? subject : "no bot name or instance id"
      }`,
    );
  }
  return {
    fields: {
      certDer,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      botName: subject.botName,
      botInstanceId: subject.botInstanceId,
      generation: subject.generation ?? 0,
    },
    spki: cert.spki,
  };
}

/**
 * Builds the identity from a join result and the subject key the join used.
 * The result is the authenticated answer of the auth service, so the bot,
 * instance and generation come from it and the certificate is not parsed
 * (0.7–1.8 ms with asn1-schema on every renewal): only its validity and SPKI
 * are read (not its subject), and the SPKI must be byte for byte the key the
 * join sent.
 */
export async function identityFromJoin(
  result: JoinResult,
  subjectKey: StoredKeyPair,
): Promise<BotIdentity> {
  const c = result.certificates;
  let certDer: Uint8Array<ArrayBuffer> | undefined;
  try {
    certDer = certificatesFromPem(c.tls_cert)[0];
  } catch (cause) {
    throw new BadServerResponseError(
      `the join result has no usable certificate: ${errorMessage(cause)}`,
      { cause },
    );
  }
  if (!certDer) throw new BadServerResponseError("the join result has no certificate");
  const { notBefore, notAfter, spki } = readValidityAndSpki(certDer);
  if (!timingSafeEqual(spki, await exportSpki(subjectKey.publicKey))) {
    throw new BadServerResponseError(
      "the issued certificate does not carry the public key the join sent",
    );
  }
  return {
    keyPem: subjectKey.stored,
    privateKey: subjectKey.privateKey,
    publicKeySsh: await toAuthorizedKey(subjectKey.publicKey),
    tlsCertPem: c.tls_cert.trimEnd() + "\n",
    sshCert: c.ssh_cert.trim(),
    tlsCaPems: c.tls_ca_certs.map((p) => p.trimEnd() + "\n"),
    sshCaKeys: c.ssh_ca_keys.map((k) => k.trim()),
    certDer,
    notBefore,
    notAfter,
    botName: result.bot_name,
    botInstanceId: result.bot_instance_id,
    generation: result.generation,
  };
}

/** True if `now` is within the certificate's validity. */
export function identityIsValid(identity: BotIdentity, now: Date): boolean {
  return now >= identity.notBefore && now < identity.notAfter;
}

/** The identity files: the same names in storage and in `identity` outputs. */
export function identityFiles(identity: BotIdentity): Record<string, string> {
  return {
    [STORAGE_FILES.key]: identity.keyPem,
    [STORAGE_FILES.publicKey]: identity.publicKeySsh + "\n",
    [STORAGE_FILES.sshCert]: identity.sshCert + "\n",
    [STORAGE_FILES.tlsCert]: identity.tlsCertPem,
    [STORAGE_FILES.tlsCaCerts]: identity.tlsCaPems.join(""),
    [STORAGE_FILES.sshCaCerts]: identity.sshCaKeys.map((k) => k + "\n").join(""),
  };
}

/** The identity files plus `tokenhash`, as kept in the bot's storage. */
export async function identityStorageFiles(
  identity: BotIdentity,
  tokenName: string,
): Promise<Record<string, string>> {
  return { ...identityFiles(identity), [STORAGE_FILES.tokenHash]: await tokenHash(tokenName) };
}

/**
 * Loads the stored identity. Returns null when there is none, when it was
 * obtained with a different token (a changed token forces a fresh join, as
 * in Teleport), or when its files do not fit together.
 */
export async function loadIdentity(
  storage: AgentStorage,
  tokenName: string,
  log: Logger,
): Promise<BotIdentity | null> {
  const read = (name: string) => readText(storage, name);
  const [keyPem, pub, sshCert, tlsCertPem, tlsCas, sshCas, hash] = await Promise.all([
    read(STORAGE_FILES.key),
    read(STORAGE_FILES.publicKey),
    read(STORAGE_FILES.sshCert),
    read(STORAGE_FILES.tlsCert),
    read(STORAGE_FILES.tlsCaCerts),
    read(STORAGE_FILES.sshCaCerts),
    read(STORAGE_FILES.tokenHash),
  ]);
  if (!keyPem || !tlsCertPem) return null;
  if (hash?.trim() !== await tokenHash(tokenName)) {
    log.warn("the stored identity was obtained with a different join token; joining afresh");
    return null;
  }
  try {
    const keyPair = await importStoredKey(storage, keyPem);
    const cert = fromCertificate(tlsCertPem);
    const identity: BotIdentity = {
      keyPem,
      privateKey: keyPair.privateKey,
      publicKeySsh: pub?.trim() || await toAuthorizedKey(keyPair.publicKey),
      tlsCertPem,
      sshCert: sshCert?.trim() ?? "",
      tlsCaPems: tlsCas ? certificatesFromPem(tlsCas).map((d) => certificateToPem(d)) : [],
      sshCaKeys: (sshCas ?? "").split("\n").map((l) => l.trim()).filter(Boolean),
      ...cert.fields,
    };
    if (!timingSafeEqual(await exportSpki(keyPair.publicKey), cert.spki)) {
      log.warn("the stored certificate does not match the stored key; joining afresh");
      return null;
    }
    return identity;
  } catch (e) {
    log.warn("the stored identity cannot be read; joining afresh", {
      error: errorMessage(e),
    });
    return null;
  }
}
