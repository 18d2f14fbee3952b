/**
 * Issuing X.509 v3 certificates (RFC 5280) signed by an Ed25519 or ECDSA
 * P-256 CA key held in WebCrypto. Parsing lives in `x509_parse.ts`.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { algOf, exportSpki, type KeyAlgorithm, sign, verify } from "../crypto/keys.ts";
import { randomBytes } from "../crypto/random.ts";
import { bytesEqual, toBase64, toHex } from "../util/encoding.ts";
import { LruMap } from "../util/lru.ts";
import {
  DER_TRUE,
  derNamedBits,
  derOctets,
  derOid,
  derSequence,
  derTime,
  derTlv,
  derUnsigned,
  derUtf8,
  ecdsaRawToDer,
  minimalUnsigned,
  parseIpAddress,
  TAG,
} from "./der.ts";
import { readChildren, readNameAttributes, readTlv } from "./der_reader.ts";

/** OIDs of the name attributes Keybound and Teleport use. */
export const NAME_OIDS = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  /** Teleport: bot name. */
  botName: "1.3.9999.2.18",
  /** Teleport: bot instance ID. */
  botInstanceId: "1.3.9999.2.20",
  /** Teleport: join generation counter. */
  generation: "1.3.9999.1.14",
} as const;

/** Signature algorithm OIDs, keyed by the JWS name of the signing key. */
export const SIGNATURE_OIDS: Readonly<Record<KeyAlgorithm, string>> = {
  EdDSA: "1.3.101.112",
  ES256: "1.2.840.10045.4.3.2",
};

/** EKU OIDs for the purposes Keybound issues. */
export const EKU_OIDS = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

/** Extension OIDs (RFC 5280 §4.2.1). */
export const EXTENSION_OIDS = {
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
} as const;

/** KeyUsage bits (RFC 5280 §4.2.1.3) as flags: `1 << n` is bit `n`. */
export const KEY_USAGE_FLAGS = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

/** One attribute of a distinguished name. Values are encoded as UTF8String. */
export interface NameAttribute {
  /** Dotted attribute type OID, e.g. `2.5.4.3` for CN. */
  oid: string;
  /** Attribute value. */
  value: string;
}

/** Key usage bits Keybound may set. */
export type KeyUsageName =
  | "digitalSignature"
  | "keyEncipherment"
  | "keyCertSign"
  | "cRLSign"
  | "keyAgreement";

/** Extended key usages Keybound may set. */
export type ExtKeyUsageName = keyof typeof EKU_OIDS;

/** Options for {@linkcode issueCertificate}. */
export interface IssueCertificateOptions {
  /** The signing CA. */
  issuer: {
    /** The CA's subject: attributes, or its Name DER copied from the CA certificate. */
    subject: NameAttribute[] | Uint8Array;
    /** CA signing key (Ed25519 or P-256); decides the signature algorithm. */
    privateKey: CryptoKey;
    /** CA public key, for the authority key identifier and a post-signing self-check. */
    publicKey: CryptoKey;
    /** The CA certificate's subject key identifier if it was not derived by RFC 5280 method 1. */
    keyIdentifier?: Uint8Array;
  };
  /** Subject name attributes, each its own RDN, in order. May be empty if SANs are given. */
  subject: NameAttribute[];
  /** Subject public key (Ed25519 or P-256). */
  publicKey: CryptoKey;
  /**
   * The SubjectPublicKeyInfo DER of `publicKey` when the caller already has
   * it in canonical DER, embedded as given: exporting a P-256 key from
   * WebCrypto costs about 0.4 ms in Deno. The caller vouches that it is the
   * same key.
   */
  publicKeySpki?: Uint8Array;
  /** Start of validity; the caller applies any backdating. Milliseconds are dropped. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** Serial number (unsigned big-endian, at most 20 bytes); default: random and positive. */
  serial?: Uint8Array;
  /** Sets basicConstraints CA:TRUE. */
  isCA?: boolean;
  /** Path length constraint; only for CAs. */
  pathLen?: number;
  /** Key usage; default `keyCertSign, cRLSign, digitalSignature` for CAs, `digitalSignature` otherwise. */
  keyUsage?: KeyUsageName[];
  /** Extended key usage; omitted when empty. */
  extKeyUsage?: ExtKeyUsageName[];
  /** DNS subject alternative names. */
  dnsNames?: string[];
  /** IPv4 / IPv6 subject alternative names. */
  ipAddresses?: string[];
  /** URI subject alternative names (absolute URIs, e.g. SPIFFE IDs). */
  uris?: string[];
  /**
   * Verify the new signature with `issuer.publicKey` before returning, which
   * catches an issuer key pair whose halves do not belong together. Costs one
   * verification: use it where a key pair is first put to work (CA creation,
   * the admin identity), not on every issue.
   */
  selfCheck?: boolean;
}

const OID_RE = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** Encodes name attributes as a Name DER: one single-valued RDN per attribute, in order. */
function encodeName(attrs: NameAttribute[]): Uint8Array {
  return derSequence(...attrs.map((a) => {
    if (!OID_RE.test(a.oid)) throw new BadParameterError(`invalid name attribute OID "${a.oid}"`);
    if (a.value === "") throw new BadParameterError(`name attribute ${a.oid} has an empty value`);
    // A lone surrogate has no UTF-8 form: refused rather than written as U+FFFD.
    if (!a.value.isWellFormed()) {
      throw new BadParameterError(`name attribute ${a.oid} is not well-formed Unicode`);
    }
    return derTlv(TAG.SET, derSequence(derOid(a.oid), derUtf8(a.value)));
  }));
}

/**
 * Checks an issuer Name given as DER before it is copied into a certificate.
 * Chain building matches issuer and subject names byte for byte in some
 * verifiers, so a Name that is not strict DER (BER lengths, trailing bytes)
 * or not a Name at all is refused rather than altered.
 */
function checkNameDer(der: Uint8Array): Uint8Array {
  const cacheKey = toHex(der);
  if (checkedIssuerNames.has(cacheKey)) return der;
  const bad = (what: string): never => {
    throw new BadParameterError(`issuer subject is not a DER Name: ${what}`);
  };
  const name = readTlv(der, 0, der.length, bad);
  if (name.tag !== TAG.SEQUENCE || name.end !== der.length) bad("not one SEQUENCE");
  readNameAttributes(der, name, bad);
  // A process has a handful of CAs; the bound only stops unbounded growth.
  if (checkedIssuerNames.size >= 256) checkedIssuerNames.clear();
  checkedIssuerNames.add(cacheKey);
  return der;
}

// Issuer Name DERs already checked: the same CA name comes back on every issue.
const checkedIssuerNames = new Set<string>();

/** A random positive 128-bit serial; the 0x40 bit keeps its DER encoding exactly 16 bytes. */
export function randomSerial(): Uint8Array {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x40;
  return b;
}

function serialInteger(serial: Uint8Array | undefined): Uint8Array {
  const v = minimalUnsigned(serial ?? randomSerial());
  if (v.length === 0 || v.every((b) => b === 0)) {
    throw new BadParameterError("serial must be positive");
  }
  // RFC 5280 §4.1.2.2: at most 20 octets, counting a leading zero.
  if (v.length > 20) throw new BadParameterError("serial must fit in 20 bytes");
  return v;
}

/** A certificate time as RFC 5280 §4.1.2.5 prescribes, to the second: the Date it stands for. */
function certTime(d: Date, field: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) {
    throw new BadParameterError(`${field} is not a valid date`);
  }
  const t = new Date(d.getTime());
  t.setUTCMilliseconds(0);
  const year = t.getUTCFullYear();
  if (year < 0 || year > 9999) throw new BadParameterError(`${field} is out of range`);
  return t;
}

/**
 * SHA-1 over the subjectPublicKey BIT STRING contents: RFC 5280 §4.2.1.2
 * method 1. Recent results are remembered by key (a digest is a WebCrypto
 * call, a handoff to another thread), so a caller that knows a key is about
 * to be certified can start the digest early, off the path of the signature
 * that waits for it (the join service does while it checks a request).
 */
export function subjectKeyIdentifier(spkiDer: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const bad = (what: string): never => {
    throw new BadParameterError(`not a SubjectPublicKeyInfo: ${what}`);
  };
  let bits: Uint8Array;
  try {
    const spki = readTlv(spkiDer, 0, spkiDer.length, bad);
    const parts = spki.tag === TAG.SEQUENCE ? readChildren(spkiDer, spki, bad) : [];
    const bitString = parts[1];
    if (
      spki.end !== spkiDer.length || parts.length !== 2 || parts[0].tag !== TAG.SEQUENCE ||
      bitString.tag !== TAG.BIT_STRING || bitString.end - bitString.content < 2 ||
      spkiDer[bitString.content] !== 0
    ) {
      bad("unexpected structure");
    }
    bits = spkiDer.slice(bitString.content + 1, bitString.end);
  } catch (e) {
    return Promise.reject(e);
  }
  const cacheKey = toBase64(bits);
  let id = keyIdentifiers.get(cacheKey);
  if (!id) {
    id = crypto.subtle.digest("SHA-1", bits as Uint8Array<ArrayBuffer>).then((d) =>
      new Uint8Array(d)
    );
    keyIdentifiers.set(cacheKey, id);
    id.catch(() => keyIdentifiers.delete(cacheKey));
  }
  // A copy each time: callers own what they get.
  return id.then((d) => d.slice());
}

// Subject key identifiers by key bits (base64); bounded, as keys come from clients.
const keyIdentifiers = new LruMap<string, Promise<Uint8Array<ArrayBuffer>>>(1024);

/** One Extension, DER; `critical` DEFAULT FALSE is written only when true. */
function ext(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return derSequence(derOid(oid), ...(critical ? [DER_TRUE] : []), derOctets(value));
}

// Extensions that depend only on options every leaf of a kind shares (basic
// constraints, key usage, EKU, the issuer's key identifier): encoded once.
const constantExtensions = new Map<string, Uint8Array>();
function constantExt(cacheKey: string, build: () => Uint8Array): Uint8Array {
  let der = constantExtensions.get(cacheKey);
  if (!der) {
    der = build();
    if (constantExtensions.size >= 256) constantExtensions.clear();
    constantExtensions.set(cacheKey, der);
  }
  return der;
}

// The issuer's SPKI and derived key identifier, once per CA key object.
const issuerSpkis = new WeakMap<CryptoKey, { spki: Uint8Array; keyId: Uint8Array }>();
async function issuerSpkiOf(
  publicKey: CryptoKey,
): Promise<{ spki: Uint8Array; keyId: Uint8Array }> {
  let v = issuerSpkis.get(publicKey);
  if (!v) {
    const spki = await exportSpki(publicKey);
    v = { spki, keyId: await subjectKeyIdentifier(spki) };
    issuerSpkis.set(publicKey, v);
  }
  return v;
}

/** AlgorithmIdentifier DER of each signature algorithm (parameters absent, RFC 8410 / 5758). */
const ALGORITHM_DER: Readonly<Record<KeyAlgorithm, Uint8Array>> = {
  EdDSA: derSequence(derOid(SIGNATURE_OIDS.EdDSA)),
  ES256: derSequence(derOid(SIGNATURE_OIDS.ES256)),
};

/** `[0] EXPLICIT Version v3` (v3 is INTEGER 2). */
const VERSION_V3_DER = new Uint8Array([0xa0, 0x03, 0x02, 0x01, 0x02]);
/** The unused-bits octet of a signature's BIT STRING (whole bytes). */
const BIT_STRING_NO_UNUSED_BITS = new Uint8Array([0]);

/** GeneralNames (RFC 5280 §4.2.1.6): dNSName [2], iPAddress [7], URI [6], all IMPLICIT. */
function sanNames(o: IssueCertificateOptions): Uint8Array[] {
  const names: Uint8Array[] = [];
  const ascii = new TextEncoder();
  for (const d of o.dnsNames ?? []) {
    if (!/^[\x21-\x7e]+$/.test(d)) throw new BadParameterError(`invalid DNS name "${d}"`);
    names.push(derTlv(0x82, ascii.encode(d)));
  }
  for (const ip of o.ipAddresses ?? []) names.push(derTlv(0x87, parseIpAddress(ip)));
  for (const u of o.uris ?? []) {
    if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:[\x21-\x7e]+$/.test(u)) {
      throw new BadParameterError(`invalid URI "${u}": must be an absolute ASCII URI`);
    }
    names.push(derTlv(0x86, ascii.encode(u)));
  }
  return names;
}

function keyUsageFlags(names: KeyUsageName[]): number {
  const flags: Record<KeyUsageName, number> = KEY_USAGE_FLAGS;
  let n = 0;
  for (const k of names) {
    if (!Object.hasOwn(flags, k)) throw new BadParameterError(`unknown key usage "${k}"`);
    n |= flags[k];
  }
  if (n === 0) throw new BadParameterError("keyUsage must not be empty");
  return n;
}

/** Issues a certificate and returns its DER. */
export async function issueCertificate(
  o: IssueCertificateOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const sigAlg = algOf(o.issuer.privateKey);
  if (algOf(o.issuer.publicKey) !== sigAlg) {
    throw new BadParameterError("issuer private and public keys are of different algorithms");
  }
  algOf(o.publicKey); // rejects unsupported subject keys before any work
  const isCA = o.isCA ?? false;
  if (o.pathLen !== undefined && (!isCA || !Number.isSafeInteger(o.pathLen) || o.pathLen < 0)) {
    throw new BadParameterError("pathLen must be a non-negative integer and requires isCA");
  }
  const notBefore = certTime(o.notBefore, "notBefore");
  const notAfter = certTime(o.notAfter, "notAfter");
  if (notAfter <= notBefore) {
    throw new BadParameterError("notAfter must be later than notBefore");
  }

  const subjectSpki = o.publicKeySpki ?? await exportSpki(o.publicKey);
  const issuerKey = await issuerSpkiOf(o.issuer.publicKey);
  const selfSigned = bytesEqual(subjectSpki, issuerKey.spki);
  const issuerName = o.issuer.subject instanceof Uint8Array
    ? checkNameDer(o.issuer.subject)
    : encodeName(o.issuer.subject);
  const subjectName = encodeName(o.subject);

  const keyUsage = keyUsageFlags(
    o.keyUsage ?? (isCA ? ["keyCertSign", "cRLSign", "digitalSignature"] : ["digitalSignature"]),
  );
  const extensions: Uint8Array[] = [
    constantExt(
      `bc:${isCA}:${o.pathLen}`,
      () =>
        ext(
          EXTENSION_OIDS.basicConstraints,
          true,
          isCA
            ? derSequence(DER_TRUE, ...(o.pathLen === undefined ? [] : [derUnsigned(o.pathLen)]))
            : derSequence(),
        ),
    ),
    constantExt(
      `ku:${keyUsage}`,
      () => ext(EXTENSION_OIDS.keyUsage, true, derNamedBits(keyUsage)),
    ),
  ];
  if (o.extKeyUsage?.length) {
    const oids = o.extKeyUsage.map((k) => {
      if (!Object.hasOwn(EKU_OIDS, k)) {
        throw new BadParameterError(`unknown extended key usage "${k}"`);
      }
      return EKU_OIDS[k];
    });
    extensions.push(
      constantExt(
        `eku:${oids.join(",")}`,
        () => ext(EXTENSION_OIDS.extKeyUsage, false, derSequence(...oids.map(derOid))),
      ),
    );
  }
  extensions.push(
    ext(
      EXTENSION_OIDS.subjectKeyIdentifier,
      false,
      derOctets(await subjectKeyIdentifier(subjectSpki)),
    ),
  );
  if (!selfSigned) {
    const keyIdentifier = o.issuer.keyIdentifier ?? issuerKey.keyId;
    extensions.push(
      constantExt(
        `aki:${toHex(keyIdentifier)}`,
        () =>
          ext(
            EXTENSION_OIDS.authorityKeyIdentifier,
            false,
            derSequence(derTlv(0x80, keyIdentifier)), // [0] IMPLICIT KeyIdentifier
          ),
      ),
    );
  }
  const san = sanNames(o);
  if (san.length > 0) {
    // RFC 5280 §4.2.1.6: with an empty subject the SAN carries the identity and must be critical.
    extensions.push(
      ext(EXTENSION_OIDS.subjectAltName, o.subject.length === 0, derSequence(...san)),
    );
  } else if (o.subject.length === 0) {
    throw new BadParameterError(
      "a certificate with an empty subject needs subject alternative names",
    );
  }

  const algorithm = ALGORITHM_DER[sigAlg];
  // TBSCertificate (RFC 5280 §4.1) from already-encoded parts: the CA's parts
  // are constant, and the subject SPKI is DER straight from WebCrypto.
  const tbs = derTlv(
    0x30,
    VERSION_V3_DER,
    derTlv(0x02, serialInteger(o.serial)),
    algorithm,
    issuerName,
    derSequence(derTime(notBefore), derTime(notAfter)),
    subjectName,
    subjectSpki,
    derTlv(0xa3, derTlv(0x30, ...extensions)),
  );

  const rawSig = await sign(o.issuer.privateKey, tbs);
  if (o.selfCheck && !(await verify(o.issuer.publicKey, rawSig, tbs))) {
    throw new BadParameterError("issuer private key does not match issuer public key");
  }
  const sigValue = sigAlg === "ES256" ? ecdsaRawToDer(rawSig) : rawSig;
  // Assembled by hand so the signed TBS bytes are exactly the embedded ones.
  return derTlv(0x30, tbs, algorithm, derTlv(0x03, BIT_STRING_NO_UNUSED_BITS, sigValue));
}

/** Options for {@linkcode createSelfSignedCA}. */
export interface SelfSignedCAOptions {
  /** CA subject (and issuer) name attributes. */
  subject: NameAttribute[];
  /** The CA key pair (Ed25519 or P-256). */
  keyPair: { privateKey: CryptoKey; publicKey: CryptoKey };
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** Optional path length constraint. */
  pathLen?: number;
}

/** Creates a self-signed CA certificate (DER) with keyCertSign, cRLSign and digitalSignature. */
export function createSelfSignedCA(o: SelfSignedCAOptions): Promise<Uint8Array<ArrayBuffer>> {
  return issueCertificate({
    issuer: {
      subject: o.subject,
      privateKey: o.keyPair.privateKey,
      publicKey: o.keyPair.publicKey,
    },
    subject: o.subject,
    publicKey: o.keyPair.publicKey,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    isCA: true,
    pathLen: o.pathLen,
    selfCheck: true,
  });
}
