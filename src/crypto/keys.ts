/**
 * Key generation, import and export for the two algorithms Keybound speaks:
 * Ed25519 (`EdDSA`) and ECDSA P-256 (`ES256`).
 *
 * Private keys handed to the rest of the code are non-extractable. Where a key
 * must rest as bytes (PEM in a storage directory, PKCS#8 in a backend) it is
 * generated extractable only long enough to export it, then re-imported
 * non-extractable; docs/security.md says what that does and does not protect.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { bytesEqual, fromHex, fromPem, toBase64, toBase64Url, toPem } from "../util/encoding.ts";
import { LruMap } from "../util/lru.ts";
import { onP256Curve } from "./p256_point.ts";
import { sha256 } from "./random.ts";

/** Signature algorithms (JWS names) Keybound accepts. */
export type KeyAlgorithm = "EdDSA" | "ES256";

/** A key pair whose private half is non-extractable. */
export interface KeyPair {
  /** Non-extractable signing key. */
  privateKey: CryptoKey;
  /** Public key (always extractable, as WebCrypto makes it). */
  publicKey: CryptoKey;
  /** JWS algorithm of this key. */
  alg: KeyAlgorithm;
}

/** A key pair together with its PKCS#8 PEM, for storage. */
export interface StorableKeyPair extends KeyPair {
  /** The private key as PKCS#8 PEM ("PRIVATE KEY"). Treat as secret. */
  pkcs8Pem: string;
}

function importParams(alg: KeyAlgorithm): EcKeyImportParams | Algorithm {
  return alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
}

/** WebCrypto parameters for signing with a key of `alg`. */
export function signParams(alg: KeyAlgorithm): Algorithm | EcdsaParams {
  return alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
}

/** The JWS algorithm of a WebCrypto key; throws for unsupported keys. */
export function algOf(key: CryptoKey): KeyAlgorithm {
  const a = key.algorithm as EcKeyAlgorithm;
  if (a.name === "Ed25519") return "EdDSA";
  if (a.name === "ECDSA" && a.namedCurve === "P-256") return "ES256";
  throw new BadParameterError(
    `unsupported key algorithm ${a.name}${a.namedCurve ? " " + a.namedCurve : ""}`,
  );
}

/** Generates a key pair whose private key never leaves WebCrypto. */
export async function generateKeyPair(alg: KeyAlgorithm = "EdDSA"): Promise<KeyPair> {
  const kp = await crypto.subtle.generateKey(importParams(alg) as EcKeyGenParams, false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  return { privateKey: kp.privateKey, publicKey: kp.publicKey, alg };
}

/**
 * Generates a key pair meant to be stored: returns the PKCS#8 PEM and a
 * non-extractable re-import of the private key. The extractable original is
 * dropped before this returns.
 */
export async function generateStorableKeyPair(
  alg: KeyAlgorithm = "EdDSA",
): Promise<StorableKeyPair> {
  const kp = await crypto.subtle.generateKey(importParams(alg) as EcKeyGenParams, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  // A join sends this key's SPKI next (an agent's new certificate key): exported while the
  // private key is exported and re-imported, it is ready when the join asks (exportSpki keeps it).
  exportSpki(kp.publicKey).catch(() => {});
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", kp.privateKey));
  const privateKey = await crypto.subtle.importKey("pkcs8", der, importParams(alg), false, [
    "sign",
  ]);
  const pkcs8Pem = toPem("PRIVATE KEY", der);
  der.fill(0);
  return { privateKey, publicKey: kp.publicKey, alg, pkcs8Pem };
}

/**
 * Imports a PKCS#8 private key (DER) of either supported algorithm and
 * derives its public key. The returned private key is non-extractable.
 */
export async function importPkcs8(der: Uint8Array): Promise<KeyPair> {
  const bytes = new Uint8Array(der) as Uint8Array<ArrayBuffer>;
  // ES256 first: workerd's Ed25519 PKCS#8 import accepts EC keys and only
  // fails later, at export or sign, while its ECDSA import rejects Ed25519.
  for (const alg of ["ES256", "EdDSA"] as const) {
    let extractable: CryptoKey;
    let jwk: JsonWebKey;
    try {
      extractable = await crypto.subtle.importKey("pkcs8", bytes, importParams(alg), true, [
        "sign",
      ]);
      // The public half is only reachable through a JWK export of the private key.
      jwk = await crypto.subtle.exportKey("jwk", extractable);
    } catch {
      continue;
    }
    delete jwk.d;
    jwk.key_ops = ["verify"];
    const publicKey = await crypto.subtle.importKey("jwk", jwk, importParams(alg), true, [
      "verify",
    ]);
    const privateKey = await crypto.subtle.importKey("pkcs8", bytes, importParams(alg), false, [
      "sign",
    ]);
    return { privateKey, publicKey, alg };
  }
  throw new BadParameterError("private key is not an Ed25519 or ECDSA P-256 PKCS#8 key");
}

/** Imports a PKCS#8 PEM ("PRIVATE KEY") private key; see {@linkcode importPkcs8}. */
export function importPkcs8Pem(pem: string): Promise<KeyPair> {
  let der: Uint8Array;
  try {
    der = fromPem("PRIVATE KEY", pem);
  } catch {
    throw new BadParameterError('expected a PEM "PRIVATE KEY" (PKCS#8) block');
  }
  return importPkcs8(der);
}

/**
 * Everything before the key bits of the canonical SPKI of each supported key
 * type: P-256 with an uncompressed point (65 bytes follow) and Ed25519 (32
 * bytes follow). It is what WebCrypto exports for such a key.
 */
export const CANONICAL_SPKI_PREFIXES: readonly {
  alg: KeyAlgorithm;
  prefix: Uint8Array;
  bits: number;
}[] = [
  // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes, 0 unused bits) }
  {
    alg: "ES256",
    prefix: fromHex("3059301306072a8648ce3d020106082a8648ce3d030107034200"),
    bits: 65,
  },
  // SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (32 bytes, 0 unused bits) }
  { alg: "EdDSA", prefix: fromHex("302a300506032b6570032100"), bits: 32 },
];

/** The canonical SPKI layout `der` has, or undefined. */
export function canonicalSpkiLayout(
  der: Uint8Array,
): (typeof CANONICAL_SPKI_PREFIXES)[number] | undefined {
  return CANONICAL_SPKI_PREFIXES.find(({ prefix, bits }) =>
    der.length === prefix.length + bits && prefix.every((b, i) => der[i] === b)
  );
}

/**
 * Public keys imported from canonical SPKIs, by the SPKI's bytes (base64).
 * A join imports its subject key three times (`begin` from its SPKI and its
 * SSH form, `continue` again for the certificates): one import serves all
 * three, and the key's export and ID, remembered per key object, with it. A
 * CryptoKey never changes and every import here makes the same kind
 * (extractable, "verify"), so sharing one is sharing a value. Bounded: the
 * bytes come from clients.
 */
const importedSpki = new LruMap<string, Promise<CryptoKey>>(1024);

/** Imports a SubjectPublicKeyInfo (DER) public key of either algorithm. */
export async function importSpki(der: Uint8Array): Promise<CryptoKey> {
  const bytes = new Uint8Array(der) as Uint8Array<ArrayBuffer>;
  const canonical = canonicalSpkiLayout(bytes);
  if (canonical) {
    const id = toBase64(bytes);
    let key = importedSpki.get(id);
    if (!key) {
      // Checked before it is kept: a cached key is a point on the curve.
      if (canonical.alg === "ES256" && !onP256Curve(bytes.subarray(canonical.prefix.length))) {
        throw offCurve();
      }
      key = crypto.subtle.importKey("spki", bytes, importParams(canonical.alg), true, ["verify"]);
      importedSpki.set(id, key);
      key.then(
        // What exporting the key would give: spare callers that export it again.
        (k) => exportedSpki.set(k, Promise.resolve(bytes)),
        () => importedSpki.delete(id),
      );
    }
    return await key;
  }
  // ES256 first: workerd's Ed25519 import accepts EC keys (see importPkcs8).
  for (const alg of ["ES256", "EdDSA"] as const) {
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("spki", bytes, importParams(alg), true, ["verify"]);
    } catch {
      continue; // try the next algorithm
    }
    if (alg === "ES256") {
      const point = await crypto.subtle.exportKey("raw", key).then(
        (raw) => new Uint8Array(raw),
        () => undefined,
      );
      if (!point || !onP256Curve(point)) throw offCurve();
    }
    return key;
  }
  throw new BadParameterError("public key is not an Ed25519 or ECDSA P-256 key");
}

function offCurve(): BadParameterError {
  return new BadParameterError("public key is not a point on the P-256 curve");
}

/**
 * Imports a public key from its bits (the 32-byte Ed25519 key or the 65-byte
 * uncompressed P-256 point) through its canonical SPKI, which an export then
 * returns without asking WebCrypto again.
 */
export function importPublicKeyBits(alg: KeyAlgorithm, bits: Uint8Array): Promise<CryptoKey> {
  const layout = CANONICAL_SPKI_PREFIXES.find((l) => l.alg === alg)!;
  if (bits.length !== layout.bits || (alg === "ES256" && bits[0] !== 0x04)) {
    return Promise.reject(new BadParameterError(`invalid ${alg} public key bits`));
  }
  const der = new Uint8Array(layout.prefix.length + bits.length);
  der.set(layout.prefix);
  der.set(bits, layout.prefix.length);
  return importSpki(der);
}

/** Imports a PEM "PUBLIC KEY" (SubjectPublicKeyInfo). */
export function importSpkiPem(pem: string): Promise<CryptoKey> {
  let der: Uint8Array;
  try {
    der = fromPem("PUBLIC KEY", pem);
  } catch {
    throw new BadParameterError('expected a PEM "PUBLIC KEY" block');
  }
  return importSpki(der);
}

/** The SubjectPublicKeyInfo DER of a public key. */
export async function exportSpki(publicKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  let spki = exportedSpki.get(publicKey);
  if (!spki) {
    spki = crypto.subtle.exportKey("spki", publicKey).then((der) => new Uint8Array(der));
    exportedSpki.set(publicKey, spki);
    spki.catch(() => exportedSpki.delete(publicKey));
  }
  return (await spki).slice();
}

// A public key never changes, and a P-256 export costs ~0.3-0.5 ms: an agent
// exports its new subject key to send it and again to check the certificate.
// The export in progress is what is remembered, so calls made together (a
// join's SPKI and SSH forms of its new key) share one.
const exportedSpki = new WeakMap<CryptoKey, Promise<Uint8Array<ArrayBuffer>>>();

/** The public key as PEM "PUBLIC KEY". */
export async function exportSpkiPem(publicKey: CryptoKey): Promise<string> {
  return toPem("PUBLIC KEY", await exportSpki(publicKey));
}

/**
 * Key ID as Teleport derives it: unpadded base64url of SHA-256 over the
 * public key's PKIX (SubjectPublicKeyInfo) DER. Remembered per key object,
 * like its export: a CA key or a bot's bound key is asked for its ID on every
 * request, and each digest is a WebCrypto call.
 */
export function keyId(publicKey: CryptoKey): Promise<string> {
  let id = keyIds.get(publicKey);
  if (!id) {
    id = (async () => toBase64Url(await sha256(await exportSpki(publicKey))))();
    keyIds.set(publicKey, id);
    id.catch(() => keyIds.delete(publicKey));
  }
  return id;
}

const keyIds = new WeakMap<CryptoKey, Promise<string>>();

/** Signs `data` with a private key of either algorithm (ECDSA: raw R||S). */
export async function sign(
  privateKey: CryptoKey,
  data: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(
    await crypto.subtle.sign(
      signParams(algOf(privateKey)),
      privateKey,
      data as Uint8Array<ArrayBuffer>,
    ),
  );
}

/** Verifies a signature made by {@linkcode sign}. */
export function verify(
  publicKey: CryptoKey,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  return crypto.subtle.verify(
    signParams(algOf(publicKey)),
    publicKey,
    signature as Uint8Array<ArrayBuffer>,
    data as Uint8Array<ArrayBuffer>,
  );
}

/** True if two public keys are the same key (compared as SPKI bytes, not text). */
export async function publicKeysEqual(a: CryptoKey, b: CryptoKey): Promise<boolean> {
  const [da, db] = await Promise.all([exportSpki(a), exportSpki(b)]);
  return bytesEqual(da, db);
}
