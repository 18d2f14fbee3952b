/**
 * Identity files (docs/protocol.md §2 "Identity files"): one PEM bundle with
 * a client certificate, its PKCS#8 private key and the cluster's CA
 * certificates. The auth service writes the admin identity in this format and
 * `tctl` reads it.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { exportSpki, importPkcs8 } from "../crypto/keys.ts";
import { timingSafeEqual } from "../crypto/random.ts";
import { NAME_OIDS } from "../pki/x509.ts";
import { certificateToPem, parseCertificate } from "../pki/x509_parse.ts";
import { parsePemBlocks, toPem } from "../util/encoding.ts";

/** The OU value marking a cluster's user CA certificate. */
export const USER_CA_OU = "user";
/** The OU value marking a cluster's host CA certificate. */
export const HOST_CA_OU = "host";

/** A parsed identity file. */
export interface IdentityFile {
  /** The identity's certificate, DER. */
  certDer: Uint8Array;
  /** The same, PEM. */
  certPem: string;
  /** The certificate's private key, non-extractable. */
  privateKey: CryptoKey;
  /** Host CA certificates (to verify the auth service's TLS certificate), PEM. */
  hostCaPems: string[];
  /** User CA certificates (the issuer of the identity), PEM. */
  userCaPems: string[];
}

/** Input of {@linkcode formatIdentityFile}. */
export interface IdentityFileParts {
  /** The identity's certificate, PEM. */
  certPem: string;
  /** Its private key, PKCS#8 PEM ("PRIVATE KEY"). */
  keyPem: string;
  /** User CA certificates, PEM. */
  userCaPems: string[];
  /** Host CA certificates, PEM. */
  hostCaPems: string[];
}

function fail(message: string, cause?: unknown): never {
  throw new BadParameterError(`identity file: ${message}`, cause ? { cause } : undefined);
}

/**
 * Formats an identity file: the identity certificate first, then its private
 * key, then the user CA and host CA certificates. Blocks are re-encoded, so
 * stray text in the inputs does not reach the file.
 *
 * @example Write an identity file from its parts
 * ```ts ignore
 * import { formatIdentityFile } from "@keybound/keybound";
 *
 * declare const certPem: string, keyPem: string, userCaPem: string, hostCaPem: string;
 * const text = formatIdentityFile({
 *   certPem,
 *   keyPem,
 *   userCaPems: [userCaPem],
 *   hostCaPems: [hostCaPem],
 * });
 * ```
 */
export function formatIdentityFile(parts: IdentityFileParts): string {
  const one = (label: string, pem: string, what: string) => {
    const blocks = parsePemBlocks(pem).filter((b) => b.label === label);
    if (blocks.length !== 1) fail(`${what} must be one PEM "${label}" block`);
    return toPem(label, blocks[0].der);
  };
  return [
    one("CERTIFICATE", parts.certPem, "certificate"),
    one("PRIVATE KEY", parts.keyPem, "private key"),
    ...parts.userCaPems.map((p) => one("CERTIFICATE", p, "user CA certificate")),
    ...parts.hostCaPems.map((p) => one("CERTIFICATE", p, "host CA certificate")),
  ].join("");
}

/**
 * Parses an identity file. The first CERTIFICATE block is the identity; every
 * later one is a CA certificate, sorted into user or host by its subject's OU
 * attribute (`user` / `host`). Checks that the private key belongs to the
 * certificate. Throws `BadParameterError` naming what is wrong.
 *
 * @example Read an identity file
 * ```ts ignore
 * import { parseIdentityFile } from "@keybound/keybound";
 *
 * declare const identityFileText: string; // the contents of admin-identity.pem
 * const id = await parseIdentityFile(identityFileText);
 * console.log(id.hostCaPems.length, id.privateKey.extractable); // 1 false
 * ```
 */
export async function parseIdentityFile(text: string): Promise<IdentityFile> {
  let blocks;
  try {
    blocks = parsePemBlocks(text);
  } catch (cause) {
    fail("a PEM block is not valid base64", cause);
  }
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  const keys = blocks.filter((b) => b.label === "PRIVATE KEY");
  if (certs.length === 0) fail('no "CERTIFICATE" block');
  if (keys.length !== 1) fail(`expected one "PRIVATE KEY" (PKCS#8) block, found ${keys.length}`);

  const certDer = certs[0].der;
  const cert = parseCertificate(certDer);
  let keyPair;
  try {
    keyPair = await importPkcs8(keys[0].der);
  } catch (cause) {
    fail("the private key is not an Ed25519 or ECDSA P-256 PKCS#8 key", cause);
  }
  if (!timingSafeEqual(await exportSpki(keyPair.publicKey), cert.spki)) {
    fail("the private key does not belong to the certificate");
  }

  const hostCaPems: string[] = [];
  const userCaPems: string[] = [];
  for (const [i, block] of certs.slice(1).entries()) {
    const ca = parseCertificate(block.der);
    const ou = ca.subject.find((a) => a.oid === NAME_OIDS.organizationalUnit)?.value;
    if (ou === USER_CA_OU) userCaPems.push(certificateToPem(block.der));
    else if (ou === HOST_CA_OU) hostCaPems.push(certificateToPem(block.der));
    else fail(`CA certificate ${i + 1} has no OU "user" or "host" in its subject`);
  }
  return {
    certDer,
    certPem: certificateToPem(certDer),
    privateKey: keyPair.privateKey,
    hostCaPems,
    userCaPems,
  };
}
