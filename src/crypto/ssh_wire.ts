/**
 * The SSH wire format (RFC 4251 §5) and public-key blobs (RFC 8709 for
 * Ed25519, RFC 5656 for ECDSA), plus the `authorized_keys` line format.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../util/encoding.ts";
import { algOf, exportSpki, importPublicKeyBits } from "./keys.ts";

/** SSH key type names Keybound supports. */
export type SshKeyType = "ssh-ed25519" | "ecdsa-sha2-nistp256";

/**
 * Builds SSH wire-format messages into one growing buffer (a certificate is
 * some thirty fields: a small array for each and a concatenation at the end
 * cost more than the fields).
 */
export class SshWriter {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #length = 0;

  /** Room for `n` more bytes. */
  #reserve(n: number): number {
    const at = this.#length;
    if (at + n > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, at + n));
      grown.set(this.#buf.subarray(0, at));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#length = at + n;
    return at;
  }

  /** Appends a `uint32`. */
  uint32(n: number): this {
    const at = this.#reserve(4); // first: it may replace the buffer
    this.#view.setUint32(at, n >>> 0);
    return this;
  }

  /** Appends a `uint64` (from a bigint or a safe integer). */
  uint64(n: bigint | number): this {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt(n));
    return this;
  }

  /** Appends a length-prefixed `string` (bytes or UTF-8 text). */
  string(s: Uint8Array | string): this {
    const b = typeof s === "string" ? utf8(s) : s;
    this.uint32(b.length);
    return this.raw(b);
  }

  /** Appends an `mpint` from unsigned big-endian bytes. */
  mpint(unsigned: Uint8Array): this {
    let i = 0;
    while (i < unsigned.length && unsigned[i] === 0) i++;
    const v = unsigned.subarray(i);
    // A set top bit would read as negative: one zero byte in front.
    const pad = v.length > 0 && v[0] & 0x80 ? 1 : 0;
    this.uint32(v.length + pad);
    if (pad) {
      const at = this.#reserve(1);
      this.#buf[at] = 0;
    }
    return this.raw(v);
  }

  /** Appends raw bytes with no length prefix. */
  raw(b: Uint8Array): this {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
    return this;
  }

  /** The bytes written so far (a copy). */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#length);
  }
}

/** Reads SSH wire-format messages; every read throws `BadParameterError` on truncation. */
export class SshReader {
  #view: DataView;
  #buf: Uint8Array;
  #off = 0;

  /**
   * Reads from the start of `buf`.
   * @param buf the message to read
   */
  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  #need(n: number) {
    if (this.#off + n > this.#buf.length) throw new BadParameterError("truncated SSH data");
  }

  /** Reads a `uint32`. */
  uint32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#off);
    this.#off += 4;
    return v;
  }

  /** Reads a `uint64`. */
  uint64(): bigint {
    this.#need(8);
    const v = this.#view.getBigUint64(this.#off);
    this.#off += 8;
    return v;
  }

  /** Reads a length-prefixed `string` as bytes. */
  bytes(): Uint8Array {
    const n = this.uint32();
    this.#need(n);
    const v = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return v;
  }

  /** Reads a length-prefixed `string` as UTF-8 text. */
  text(): string {
    return fromUtf8(this.bytes());
  }

  /** True when every byte has been read. */
  get done(): boolean {
    return this.#off === this.#buf.length;
  }

  /** Bytes not read yet. */
  rest(): Uint8Array {
    return this.#buf.subarray(this.#off);
  }
}

/** The SSH key type name of a WebCrypto public key. */
export function sshKeyType(publicKey: CryptoKey): SshKeyType {
  return algOf(publicKey) === "EdDSA" ? "ssh-ed25519" : "ecdsa-sha2-nistp256";
}

/** The SSH public-key blob of a WebCrypto public key. */
export async function publicKeyToSshBlob(publicKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  // WebCrypto's SPKI ends with the key bits (the 32-byte Ed25519 key or the
  // 65-byte uncompressed P-256 point), and exportSpki remembers its export.
  const type = sshKeyType(publicKey);
  const spki = await exportSpki(publicKey);
  const bits = spki.subarray(spki.length - (type === "ssh-ed25519" ? 32 : 65));
  if (type !== "ssh-ed25519" && bits[0] !== 0x04) {
    throw new BadParameterError("expected an uncompressed P-256 public key");
  }
  return sshBlobFromKeyBits(type, bits);
}

/**
 * The SSH public-key blob from the key's bits (the 32-byte Ed25519 key, or
 * the uncompressed P-256 point): the same bits the SPKI's BIT STRING holds.
 */
export function sshBlobFromKeyBits(type: SshKeyType, bits: Uint8Array): Uint8Array<ArrayBuffer> {
  const w = new SshWriter().string(type);
  if (type === "ecdsa-sha2-nistp256") w.string("nistp256");
  return w.string(bits).bytes();
}

/** Imports an SSH public-key blob as a WebCrypto public key. */
export async function sshBlobToPublicKey(blob: Uint8Array): Promise<CryptoKey> {
  const r = new SshReader(blob);
  const type = r.text();
  try {
    if (type === "ssh-ed25519") {
      const raw = r.bytes();
      if (!r.done || raw.length !== 32) throw new BadParameterError(`invalid ${type} public key`);
      return await importPublicKeyBits("EdDSA", raw);
    }
    if (type === "ecdsa-sha2-nistp256") {
      const curve = r.text();
      const q = r.bytes();
      if (!r.done || curve !== "nistp256" || q.length !== 65) {
        throw new BadParameterError(`invalid ${type} public key`);
      }
      return await importPublicKeyBits("ES256", q);
    }
  } catch (cause) {
    if (cause instanceof BadParameterError) throw cause;
    throw new BadParameterError(`invalid ${type} public key`, { cause });
  }
  throw new BadParameterError(
    `unsupported SSH key type "${type}" (supported: ssh-ed25519, ecdsa-sha2-nistp256)`,
  );
}

/** A parsed `authorized_keys` line. */
export interface AuthorizedKey {
  /** Key type name from the line, e.g. `ssh-ed25519`. */
  type: string;
  /** The decoded blob. */
  blob: Uint8Array;
  /** Trailing comment, if any. */
  comment: string;
  /** The key, imported. */
  key: CryptoKey;
}

/**
 * Formats a public key as an `authorized_keys` line without a trailing
 * newline (the form Teleport sends on the wire).
 */
export async function toAuthorizedKey(publicKey: CryptoKey, comment = ""): Promise<string> {
  const line = `${sshKeyType(publicKey)} ${toBase64(await publicKeyToSshBlob(publicKey))}`;
  return comment ? `${line} ${comment}` : line;
}

function splitAuthorizedKey(line: string): { parts: string[]; blob: Uint8Array } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) {
    throw new BadParameterError('invalid authorized_keys line: expected "TYPE BASE64 [COMMENT]"');
  }
  try {
    return { parts, blob: fromBase64(parts[1]) };
  } catch {
    throw new BadParameterError("invalid authorized_keys line: key is not base64");
  }
}

function checkBlobType(parts: string[], blob: Uint8Array): void {
  const inner = new SshReader(blob).text();
  if (inner !== parts[0]) {
    throw new BadParameterError(
      `invalid authorized_keys line: type "${parts[0]}" does not match key "${inner}"`,
    );
  }
}

/**
 * The type, blob and comment of an `authorized_keys` line, without importing
 * the key: for comparing a line with known keys' blobs. The blob is not
 * checked to hold a valid key; {@linkcode parseAuthorizedKey} does that.
 */
export function authorizedKeyBlob(line: string): Omit<AuthorizedKey, "key"> {
  const { parts, blob } = splitAuthorizedKey(line);
  checkBlobType(parts, blob);
  return { type: parts[0], blob, comment: parts.slice(2).join(" ") };
}

/** Parses an `authorized_keys` line (options are not supported). */
export async function parseAuthorizedKey(line: string): Promise<AuthorizedKey> {
  const { parts, blob } = splitAuthorizedKey(line);
  const key = await sshBlobToPublicKey(blob);
  checkBlobType(parts, blob);
  return { type: parts[0], blob, comment: parts.slice(2).join(" "), key };
}

/**
 * SHA256 fingerprint as OpenSSH prints it: `SHA256:` + unpadded base64 of the
 * SHA-256 of the blob.
 */
export async function sshFingerprint(blob: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", blob as Uint8Array<ArrayBuffer>));
  return "SHA256:" + toBase64(h).replace(/=+$/, "");
}
