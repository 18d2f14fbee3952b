/**
 * Client certificates checked against the cluster's user CA (docs/protocol.md
 * §2 rule 1), with a bounded cache of the successful checks. Parsing a
 * certificate and verifying the CA's signature cost a few milliseconds;
 * a refresh presents the same certificate on `begin` and again on every
 * signed `continue`, and a bot signs its API calls with it for an hour, so
 * each certificate is parsed and verified once per process.
 *
 * The cache key is the certificate DER itself (base64): a hit needs no hash,
 * so a steady refresh costs no digest of the certificate it presents (each
 * WebCrypto call is a handoff to another thread, dearer than the lookup).
 * The entry names the user CA key that verified it, and a hit counts only
 * while that key is trusted, so once a rotation drops a key its entries are
 * never hit again (nor another cluster's, when tests share the cache): such
 * an entry is dropped when looked up, not kept as the most recently used. One
 * lookup per request, whichever key signed: keying by CA key ID instead took
 * a lookup per trusted key tried, and an Ed25519 bot's hit came on the second
 * in standby, the third during a rotation. Entries
 * are dropped at the certificate's `notAfter`, the validity window is checked
 * on every hit, and failures are never cached. Locks are not part of what is
 * cached: callers check them on every request.
 *
 * @module
 */
import { AccessDeniedError, CaKeyDroppedError, KeyboundError } from "../errors.ts";
import { algOf, keyId } from "../crypto/keys.ts";
import { sha256 } from "../crypto/random.ts";
import {
  type NameAttribute,
  parseCertificate,
  type ParsedCertificate,
  verifyCertificateSignature,
} from "../pki/mod.ts";
import { identityFromSubject, isJoinSubject, type SubjectIdentity } from "../protocol/subject.ts";
import { bytesEqual, toBase64, toHex } from "../util/encoding.ts";
import type { CertAuthority, ServerContext, TlsCaKey } from "./context.ts";
import type { ParsedCertificateLike } from "./identity_types.ts";
import { LruMap } from "../util/lru.ts";

/** Most certificates remembered per process (about 3 KB each, the DER's base64 in the key). */
export const VERIFIED_CERT_CACHE_SIZE = 10_000;

/** A client certificate issued by the user CA, and the identity its subject names. */
export interface VerifiedCertificate {
  /** Hex SHA-256 of the certificate DER. */
  sha256: string;
  /** The identity from the subject. */
  identity: SubjectIdentity;
  /** The certificate's public key. */
  publicKey: CryptoKey;
  /** Serial and validity. */
  cert: ParsedCertificateLike;
}

/** A cache entry: a verified certificate and the ID of the user CA key that verified it. */
export interface CachedVerification {
  /** `keyId` of the user CA key whose signature it carries. */
  caId: string;
  /** The verification. */
  verified: VerifiedCertificate;
}

/** A size-bounded least-recently-used map of verified certificates that drops them at `notAfter`. */
export class VerifiedCertificateCache {
  #entries: LruMap<string, CachedVerification>;

  /** @param maxEntries upper bound on remembered certificates */
  constructor(readonly maxEntries: number = VERIFIED_CERT_CACHE_SIZE) {
    this.#entries = new LruMap(maxEntries);
  }

  /** The entry for `key` if present and not past its `notAfter` at `now`. */
  get(key: string, now: Date): CachedVerification | undefined {
    const v = this.#entries.get(key);
    if (!v) return undefined;
    if (now > v.verified.cert.notAfter) {
      this.#entries.delete(key);
      return undefined;
    }
    return v;
  }

  /** Forgets the entry for `key`. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Remembers a successful verification. */
  set(key: string, value: CachedVerification): void {
    this.#entries.set(key, value);
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }
}

// One cache per process: a hit counts only for a CA key trusted now, so several
// clusters (tests) can share it without seeing each other's certificates as valid.
const sharedCache = new VerifiedCertificateCache();

function unauthenticated(message: string, cause?: unknown): KeyboundError {
  return new KeyboundError("UNAUTHENTICATED", message, cause ? { cause } : undefined);
}

/** The refusal of a certificate no trusted user CA key issued (as far as trust goes). */
function notIssuedByUserCa(what: string, why = ""): KeyboundError {
  return unauthenticated(`${what}: certificate was not issued by this cluster's user CA${why}`);
}

/**
 * Whether user CA key `caKey` may sign a client certificate of `subject` for
 * subject key `subjectKey`: a P-256 key any, the Ed25519 key only the join
 * certificate of an Ed25519 bot ({@linkcode isJoinSubject} and an Ed25519
 * subject key: join/certs.ts, joinX509Signer). The one rule for each place
 * that signs with the key or makes a verified-certificate entry, so a
 * signing bug that hands the key another subject (admin, output, console)
 * or a P-256 subject key makes no certificate, and none that is accepted.
 */
export function userCaKeyMaySign(
  caKey: CryptoKey,
  subject: NameAttribute[],
  subjectKey: CryptoKey,
): boolean {
  return algOf(caKey) !== "EdDSA" || (isJoinSubject(subject) && algOf(subjectKey) === "EdDSA");
}

/**
 * Every user CA key a client certificate may be signed by: the P-256 keys
 * (every identity) and the Ed25519 keys (the join certificates of Ed25519
 * bots), each trusted per phase exactly as its key set is. A certificate is
 * only ever verified by keys of its own signature algorithm.
 */
export function trustedClientCaKeys(ca: CertAuthority): TlsCaKey[] {
  return [...ca.trustedTls, ...ca.trustedTlsEd25519];
}

/** The refusal of a certificate an Ed25519 user CA key signed but may not have signed. */
function notMaySign(what: string): KeyboundError {
  return notIssuedByUserCa(what, " (its Ed25519 key signs only Ed25519 bots' join certificates)");
}

/**
 * The refusal of a certificate whose subject carries a `usage` (an output
 * certificate): it names the bot but must never act as its identity.
 */
export function notAnIdentity(what: string, usage: string): AccessDeniedError {
  return new AccessDeniedError(`${what}: a certificate with usage "${usage}" is not an identity`);
}

/**
 * `CA_KEY_DROPPED` if a user CA key an earlier rotation dropped signed
 * `cert`, else the generic refusal. Only public keys are tried, only on this
 * failure path, and only those whose key identifier matches the
 * certificate's authority key identifier (so a forged certificate costs at
 * most one extra signature check; one without an authority key identifier
 * costs none: every certificate the cluster issues carries one). What a
 * dropped Ed25519 key may not have signed ({@linkcode userCaKeyMaySign}) is
 * refused as when that key was trusted: it never was an identity of this
 * cluster, so no "join again" answer (nor the rate limit's allowance for one).
 * Likewise a subject the trusted path refuses whatever key signed it (no
 * identity in it, or an output certificate's `usage`): that refusal, charged
 * by the rate limit like any failed credential, since such a certificate
 * never was an identity that could join again.
 */
async function notIssuedError(
  ctx: ServerContext,
  cert: ParsedCertificate,
  what: string,
): Promise<KeyboundError> {
  const aki = cert.authorityKeyId;
  for (const d of ctx.cas.user.dropped) {
    const key = [d.tls, d.tlsEd25519].find((k) => aki && k?.keyId && bytesEqual(aki, k.keyId));
    if (key && await verifyCertificateSignature(cert, key.publicKey)) {
      if (!await droppedKeyMaySign(key.publicKey, cert)) return notMaySign(what);
      const identity = identityFromSubject(cert.subject);
      if (typeof identity === "string") return unauthenticated(`${what}: ${identity}`);
      if (identity.usage !== undefined) return notAnIdentity(what, identity.usage);
      return new CaKeyDroppedError(
        `${what}: certificate was issued by a user CA key that a rotation dropped ` +
          `(${d.droppedAt}); join again with the bound key`,
      );
    }
  }
  return notIssuedByUserCa(what);
}

/** {@linkcode userCaKeyMaySign} for a certificate whose subject key may not even import. */
async function droppedKeyMaySign(caKey: CryptoKey, cert: ParsedCertificate): Promise<boolean> {
  // A P-256 key may sign any subject: no subject key to import.
  if (algOf(caKey) !== "EdDSA") return true;
  let subjectKey: CryptoKey;
  try {
    subjectKey = await cert.publicKey();
  } catch {
    return false;
  }
  return userCaKeyMaySign(caKey, cert.subject, subjectKey);
}

/**
 * Checks a client certificate (DER) against every trusted user CA key (of
 * either algorithm: {@linkcode trustedClientCaKeys}) and
 * returns it with its identity. `what` prefixes error messages ("signed
 * request", "certificate"). Throws `CA_KEY_DROPPED` if a key a rotation
 * dropped issued it and its subject is an identity the trusted path would
 * take (callers refuse a `usage` once trusted: the dropped path refuses it
 * with {@linkcode notAnIdentity}), `UNAUTHENTICATED` if it does not parse, is a CA, was not
 * signed by a trusted user CA key (or was signed by an Ed25519 one but is not
 * an Ed25519 bot's join certificate), is outside its validity at `now`, or its
 * subject is not an identity.
 */
export async function verifyClientCertificate(
  ctx: ServerContext,
  der: Uint8Array,
  now: Date,
  what: string,
  cache: VerifiedCertificateCache = sharedCache,
): Promise<VerifiedCertificate> {
  const trusted = trustedClientCaKeys(ctx.cas.user);
  if (trusted.length === 0) throw new KeyboundError("INTERNAL", "user CA has no X.509 key");
  const bytesKey = toBase64(der);
  const caIds = await Promise.all(trusted.map((k) => keyId(k.keyPair.publicKey)));
  const hit = cache.get(bytesKey, now);
  if (hit && caIds.includes(hit.caId)) {
    if (now < hit.verified.cert.notBefore) {
      throw unauthenticated(`${what}: certificate is expired or not yet valid`);
    }
    return hit.verified;
  }
  // An entry of a key no longer trusted (a rotation dropped it) is never a hit again: the
  // lookup just made it the most recently used, so drop it instead of keeping it there.
  if (hit) cache.delete(bytesKey);
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (cause) {
    throw unauthenticated(`${what}: certificate does not parse`, cause);
  }
  if (cert.isCA) throw notIssuedByUserCa(what);
  let signer = -1;
  for (let i = 0; i < trusted.length && signer < 0; i++) {
    if (await verifyCertificateSignature(cert, trusted[i].keyPair.publicKey)) signer = i;
  }
  if (signer < 0) throw await notIssuedError(ctx, cert, what);
  if (now < cert.notBefore || now > cert.notAfter) {
    throw unauthenticated(`${what}: certificate is expired or not yet valid`);
  }
  const identity = identityFromSubject(cert.subject);
  if (typeof identity === "string") throw unauthenticated(`${what}: ${identity}`);
  const publicKey = await cert.publicKey();
  // Trust holds the Ed25519 key to what it may sign. Checked before the cache
  // entry is made, so a hit costs nothing more.
  if (!userCaKeyMaySign(trusted[signer].keyPair.publicKey, cert.subject, publicKey)) {
    throw notMaySign(what);
  }
  const verified: VerifiedCertificate = {
    sha256: toHex(await sha256(der)),
    identity,
    publicKey,
    cert: { serialHex: cert.serialHex, notBefore: cert.notBefore, notAfter: cert.notAfter },
  };
  cache.set(bytesKey, { caId: caIds[signer], verified });
  return verified;
}

/** What {@linkcode rememberIssuedCertificate} needs to know of a certificate it just issued. */
export interface IssuedClientCertificate {
  /** The certificate DER as issued. */
  der: Uint8Array;
  /** The subject attributes it was issued with. */
  subject: NameAttribute[];
  /** Its subject public key. */
  publicKey: CryptoKey;
  /** Serial, hex without leading zero bytes. */
  serialHex: string;
  /** Validity as requested (milliseconds are dropped, as in the certificate). */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
}

/**
 * Enters a certificate this process has just signed with user CA key `ca`, so the
 * bot's next request (the `begin` of its next refresh, its signed API calls)
 * skips parsing it and verifying the CA signature. It is as trustworthy as a
 * verified one: the CA key pair was self-checked when it was first used
 * (CA creation, admin identity), and the entry is keyed by the exact DER
 * that left here. Another auth process, or this one after a restart, simply
 * misses and verifies. What {@linkcode userCaKeyMaySign} refuses is not
 * entered.
 */
export async function rememberIssuedCertificate(
  ca: TlsCaKey,
  issued: IssuedClientCertificate,
  cache: VerifiedCertificateCache = sharedCache,
): Promise<void> {
  const identity = identityFromSubject(issued.subject);
  if (typeof identity === "string") return;
  // What the Ed25519 key may not sign gets no entry: the next request verifies
  // it and is refused, as in any other process.
  if (!userCaKeyMaySign(ca.keyPair.publicKey, issued.subject, issued.publicKey)) return;
  const [caId, hash] = await Promise.all([
    keyId(ca.keyPair.publicKey),
    sha256(issued.der),
  ]);
  const seconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
  cache.set(toBase64(issued.der), {
    caId,
    verified: {
      sha256: toHex(hash),
      identity,
      publicKey: issued.publicKey,
      cert: {
        serialHex: issued.serialHex,
        notBefore: seconds(issued.notBefore),
        notAfter: seconds(issued.notAfter),
      },
    },
  });
}
