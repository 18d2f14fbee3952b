/**
 * OpenSSH certificates (PROTOCOL.certkeys in the OpenSSH sources) for
 * Ed25519 and ECDSA P-256 keys: issuing with a WebCrypto CA key, parsing,
 * and signature verification.
 *
 * @module
 */
import { BadParameterError, KeyboundError } from "../errors.ts";
import { algOf, sign, verify } from "../crypto/keys.ts";
import { randomBytes } from "../crypto/random.ts";
import {
  publicKeyToSshBlob,
  sshBlobToPublicKey,
  type SshKeyType,
  sshKeyType,
  SshReader,
  SshWriter,
} from "../crypto/ssh_wire.ts";
import { concatBytes, fromBase64, toBase64, utf8 } from "../util/encoding.ts";
import { fixedWidth, P256_SCALAR_BYTES } from "./der.ts";

/** Certificate key type names, by the plain key type they certify. */
export const SSH_CERT_KEY_TYPES: Readonly<Record<SshKeyType, string>> = {
  "ssh-ed25519": "ssh-ed25519-cert-v01@openssh.com",
  "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256-cert-v01@openssh.com",
};

/** Whom a certificate identifies. */
export type SshCertType = "user" | "host";

const CERT_TYPE_CODES: Record<SshCertType, number> = { user: 1, host: 2 };

/**
 * Extensions a user certificate gets when the caller passes none: what
 * `ssh-keygen` grants by default minus `permit-X11-forwarding`, because
 * machine identities have no display and X11 forwarding only widens what a
 * stolen certificate can reach.
 */
export const DEFAULT_USER_EXTENSIONS: Readonly<Record<string, string>> = Object.freeze({
  "permit-agent-forwarding": "",
  "permit-port-forwarding": "",
  "permit-pty": "",
  "permit-user-rc": "",
});

/** Options for {@linkcode issueSshCertificate}. */
export interface IssueSshCertificateOptions {
  /** CA signing key (Ed25519 or P-256). */
  caPrivateKey: CryptoKey;
  /** CA public key; embedded as the signature key. */
  caPublicKey: CryptoKey;
  /** The key being certified (Ed25519 or P-256). */
  publicKey: CryptoKey;
  /**
   * The SSH public-key blob of `publicKey` when the caller already has it
   * (say, from the `authorized_keys` line it was parsed from): exporting a
   * P-256 key from WebCrypto costs about 0.6 ms in Deno. The caller vouches
   * that it is the same key; its type must be the key's.
   */
  publicKeyBlob?: Uint8Array;
  /** User or host certificate. */
  certType: SshCertType;
  /** Key ID, logged by sshd; also used as the line's comment. */
  keyId: string;
  /** Usernames (user certs) or host names (host certs). At least one: an empty list means "any". */
  principals: string[];
  /** Start of validity (whole seconds; fractions are dropped). */
  validAfter: Date;
  /** End of validity. */
  validBefore: Date;
  /** Serial; default a random 64-bit value. */
  serial?: bigint;
  /** Critical options such as `force-command` or `source-address`. */
  criticalOptions?: Record<string, string>;
  /** Extensions; `""` means a flag. Default for user certs: {@linkcode DEFAULT_USER_EXTENSIONS}; none for host certs. */
  extensions?: Record<string, string>;
  /** CA-chosen nonce; default 32 random bytes. */
  nonce?: Uint8Array;
  /**
   * Verify the signature with `caPublicKey` before returning, catching a CA
   * key pair whose halves do not belong together. Costs one verification, so
   * it is for first use of a key pair, not for every issue.
   */
  selfCheck?: boolean;
}

/** A parsed OpenSSH certificate. */
export interface ParsedSshCertificate {
  /** Certificate key type, e.g. `ssh-ed25519-cert-v01@openssh.com`. */
  type: string;
  /** The CA's nonce. */
  nonce: Uint8Array;
  /** The certified key. */
  publicKey: CryptoKey;
  /** Serial number. */
  serial: bigint;
  /** User or host certificate. */
  certType: SshCertType;
  /** Key ID. */
  keyId: string;
  /** Valid principals (empty means any, as OpenSSH reads it). */
  principals: string[];
  /** Start of validity. */
  validAfter: Date;
  /** End of validity; OpenSSH's "forever" becomes the largest representable Date. */
  validBefore: Date;
  /** Critical options by name. */
  criticalOptions: Record<string, string>;
  /** Extensions by name. */
  extensions: Record<string, string>;
  /** The CA public key. */
  signatureKey: CryptoKey;
  /** The CA public key as an SSH blob (for fingerprints). */
  signatureKeyBlob: Uint8Array;
  /** Every byte the signature covers. */
  signedBytes: Uint8Array;
  /** The signature's algorithm name and algorithm-specific blob. */
  signature: { format: string; blob: Uint8Array };
}

function unixSeconds(d: Date, field: string): bigint {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(ms) || ms < 0) throw new BadParameterError(`${field} is not a valid date`);
  return BigInt(Math.floor(ms / 1000));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Options map → wire form: names sorted (OpenSSH requires it), non-empty values wrapped in a string. */
function encodeOptions(opts: Record<string, string>, field: string): Uint8Array {
  const w = new SshWriter();
  // OpenSSH wants byte order of the UTF-8 names, which differs from JS string order beyond the BMP.
  const names = Object.keys(opts).map((n) => ({ n, b: utf8(n) })).sort((x, y) =>
    compareBytes(x.b, y.b)
  )
    .map((x) => x.n);
  for (const name of names) {
    if (name === "") throw new BadParameterError(`${field} has an empty name`);
    const value = opts[name];
    w.string(name).string(value === "" ? new Uint8Array(0) : new SshWriter().string(value).bytes());
  }
  return w.bytes();
}

function decodeOptions(blob: Uint8Array, field: string): Record<string, string> {
  const r = new SshReader(blob);
  const out: Record<string, string> = {};
  while (!r.done) {
    const name = r.text();
    const data = r.bytes();
    if (Object.hasOwn(out, name)) throw new BadParameterError(`duplicate ${field} "${name}"`);
    let value = "";
    if (data.length > 0) {
      const inner = new SshReader(data);
      value = inner.text();
      if (!inner.done) throw new BadParameterError(`${field} "${name}" has trailing data`);
    }
    out[name] = value;
  }
  return out;
}

/** Encodes the ECDSA signature blob: mpint(r) mpint(s) from WebCrypto's `r||s`. */
function ecdsaSigBlob(raw: Uint8Array): Uint8Array {
  return new SshWriter().mpint(raw.subarray(0, P256_SCALAR_BYTES)).mpint(
    raw.subarray(P256_SCALAR_BYTES),
  )
    .bytes();
}

// The CA's SSH blob, once per CA key object: a CA signs many certificates.
const caBlobs = new WeakMap<CryptoKey, Promise<Uint8Array>>();
function caBlobOf(caPublicKey: CryptoKey): Promise<Uint8Array> {
  let blob = caBlobs.get(caPublicKey);
  if (!blob) {
    blob = publicKeyToSshBlob(caPublicKey);
    caBlobs.set(caPublicKey, blob);
    blob.catch(() => caBlobs.delete(caPublicKey));
  }
  return blob;
}

/** Issues a certificate; returns `"<cert type> BASE64 [keyId]"` without a trailing newline. */
export async function issueSshCertificate(o: IssueSshCertificateOptions): Promise<string> {
  const caType = sshKeyType(o.caPublicKey);
  if (algOf(o.caPrivateKey) !== algOf(o.caPublicKey)) {
    throw new BadParameterError("CA private and public keys are of different algorithms");
  }
  if (!(o.certType in CERT_TYPE_CODES)) {
    throw new BadParameterError(`invalid certType "${o.certType}"`);
  }
  if (o.principals.length === 0 || o.principals.some((p) => p === "")) {
    throw new BadParameterError(
      "principals must be non-empty strings, and at least one is required",
    );
  }
  const validAfter = unixSeconds(o.validAfter, "validAfter");
  const validBefore = unixSeconds(o.validBefore, "validBefore");
  if (validBefore <= validAfter) {
    throw new BadParameterError("validBefore must be later than validAfter");
  }
  const serial = o.serial ?? new DataView(randomBytes(8).buffer).getBigUint64(0);
  if (serial < 0n || serial >= 1n << 64n) {
    throw new BadParameterError("serial must be an unsigned 64-bit value");
  }

  const subjectBlob = o.publicKeyBlob ?? await publicKeyToSshBlob(o.publicKey);
  const subject = new SshReader(subjectBlob);
  const subjectType = subject.text();
  if (subjectType !== sshKeyType(o.publicKey)) {
    throw new BadParameterError("publicKeyBlob is not of the type of publicKey");
  }
  const certKeyType = SSH_CERT_KEY_TYPES[subjectType as SshKeyType];
  const principals = new SshWriter();
  for (const p of o.principals) principals.string(p);
  const extensions = o.extensions ?? (o.certType === "user" ? DEFAULT_USER_EXTENSIONS : {});

  const signed = new SshWriter()
    .string(certKeyType)
    .string(o.nonce ?? randomBytes(32))
    .raw(subject.rest()) // the key's own fields, without its type name
    .uint64(serial)
    .uint32(CERT_TYPE_CODES[o.certType])
    .string(o.keyId)
    .string(principals.bytes())
    .uint64(validAfter)
    .uint64(validBefore)
    .string(encodeOptions(o.criticalOptions ?? {}, "critical option"))
    .string(encodeOptions(extensions, "extension"))
    .string(new Uint8Array(0)) // reserved
    .string(await caBlobOf(o.caPublicKey))
    .bytes();
  const raw = await sign(o.caPrivateKey, signed);
  if (o.selfCheck && !(await verify(o.caPublicKey, raw, signed))) {
    throw new BadParameterError("CA private key does not match CA public key");
  }
  const sigBlob = caType === "ssh-ed25519" ? raw : ecdsaSigBlob(raw);
  const cert = concatBytes(
    signed,
    new SshWriter().string(new SshWriter().string(caType).string(sigBlob).bytes()).bytes(),
  );
  // A key ID with control characters would break the one-line format; leave the comment off.
  const printable = [...o.keyId].every((c) => c.charCodeAt(0) >= 0x20 && c !== "\x7f");
  const comment = o.keyId !== "" && printable ? ` ${o.keyId}` : "";
  return `${certKeyType} ${toBase64(cert)}${comment}`;
}

const MAX_DATE_MS = 8.64e15;

function dateFromSeconds(s: bigint): Date {
  return new Date(s >= BigInt(MAX_DATE_MS / 1000) ? MAX_DATE_MS : Number(s) * 1000);
}

/** Parses a certificate line (`TYPE BASE64 [COMMENT]`); throws `BadParameterError` if malformed. */
export async function parseSshCertificate(line: string): Promise<ParsedSshCertificate> {
  try {
    return await parseInner(line);
  } catch (cause) {
    if (cause instanceof KeyboundError) throw cause;
    throw new BadParameterError("malformed SSH certificate", { cause });
  }
}

async function parseInner(line: string): Promise<ParsedSshCertificate> {
  const parts = line.trim().split(/\s+/);
  const keyType = (Object.keys(SSH_CERT_KEY_TYPES) as SshKeyType[])
    .find((k) => SSH_CERT_KEY_TYPES[k] === parts[0]);
  if (!keyType || parts.length < 2) {
    throw new BadParameterError(
      `unsupported SSH certificate type "${parts[0]}" (supported: ${
        Object.values(SSH_CERT_KEY_TYPES).join(", ")
      })`,
    );
  }
  const blob = fromBase64(parts[1]);
  const r = new SshReader(blob);
  if (r.text() !== parts[0]) {
    throw new BadParameterError("SSH certificate type does not match its blob");
  }
  const nonce = r.bytes();
  const key = new SshWriter().string(keyType);
  if (keyType === "ecdsa-sha2-nistp256") key.string(r.bytes()); // curve name
  const publicKey = await sshBlobToPublicKey(key.string(r.bytes()).bytes());
  const serial = r.uint64();
  const typeCode = r.uint32();
  const certType = (Object.keys(CERT_TYPE_CODES) as SshCertType[]).find((t) =>
    CERT_TYPE_CODES[t] === typeCode
  );
  if (!certType) throw new BadParameterError(`unknown SSH certificate type code ${typeCode}`);
  const keyId = r.text();
  const pr = new SshReader(r.bytes());
  const principals: string[] = [];
  while (!pr.done) principals.push(pr.text());
  const validAfter = dateFromSeconds(r.uint64());
  const validBefore = dateFromSeconds(r.uint64());
  const criticalOptions = decodeOptions(r.bytes(), "critical option");
  const extensions = decodeOptions(r.bytes(), "extension");
  r.bytes(); // reserved: ignored, as OpenSSH does
  const signatureKeyBlob = r.bytes();
  const signedBytes = blob.subarray(0, blob.length - r.rest().length);
  const sr = new SshReader(r.bytes());
  if (!r.done) throw new BadParameterError("trailing data after SSH certificate signature");
  const signature = { format: sr.text(), blob: sr.bytes() };
  if (!sr.done) throw new BadParameterError("trailing data in SSH certificate signature");
  return {
    type: parts[0],
    nonce,
    publicKey,
    serial,
    certType,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey: await sshBlobToPublicKey(signatureKeyBlob),
    signatureKeyBlob,
    signedBytes,
    signature,
  };
}

/** Reads mpint(r) mpint(s) strictly (non-negative, minimal) into `r||s`; null if malformed. */
function ecdsaSigFromBlob(blob: Uint8Array): Uint8Array | null {
  try {
    const r = new SshReader(blob);
    const parts = [r.bytes(), r.bytes()];
    if (!r.done) return null;
    const fixed = parts.map((v) => {
      if (v.length === 0 || v[0] & 0x80 || (v[0] === 0 && !(v[1] & 0x80))) return null;
      return fixedWidth(v, P256_SCALAR_BYTES);
    });
    return fixed[0] && fixed[1] ? concatBytes(fixed[0], fixed[1]) : null;
  } catch {
    return null;
  }
}

/**
 * True if the certificate's signature verifies under its embedded CA key.
 * Checks nothing else: whether that CA is trusted, the validity window and
 * the principals are the caller's decisions.
 */
export async function verifySshCertificate(cert: ParsedSshCertificate): Promise<boolean> {
  const caType = sshKeyType(cert.signatureKey);
  if (cert.signature.format !== caType) return false;
  const raw = caType === "ssh-ed25519"
    ? cert.signature.blob
    : ecdsaSigFromBlob(cert.signature.blob);
  if (!raw || (caType === "ssh-ed25519" && raw.length !== 64)) return false;
  return await verify(cert.signatureKey, raw, cert.signedBytes);
}
