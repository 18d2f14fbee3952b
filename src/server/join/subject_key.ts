/**
 * The certificate subject key of a join (docs/protocol.md §4.1
 * `public_tls_key` / `public_ssh_key`): validated once at `begin`, in both
 * encodings, and kept in the session in canonical form.
 *
 * Exporting a P-256 public key from WebCrypto costs about 0.4 ms in Deno
 * while importing one is nearly free, so the usual path compares the two
 * encodings as bytes (the SPKI's key bits against the SSH blob's key field)
 * and keeps the client's SPKI DER when it re-encodes identically. Anything
 * unusual falls back to comparing exported keys, so the outcome is the same
 * either way.
 *
 * @module
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { BadParameterError, inContext } from "../../errors.ts";
import {
  algOf,
  canonicalSpkiLayout,
  exportSpki,
  importSpki,
  publicKeysEqual,
} from "../../crypto/keys.ts";
import { parseAuthorizedKey, SshReader, toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { bytesEqual, fromPem, toBase64, toPem } from "../../util/encoding.ts";

/** A validated subject key. */
export interface SubjectKey {
  /** The key. */
  key: CryptoKey;
  /** SubjectPublicKeyInfo DER, canonical. */
  spki: Uint8Array;
  /** `public_tls_key` in canonical form: PEM of {@linkcode spki}. */
  tlsPem: string;
  /** `public_ssh_key` in canonical form: `TYPE BASE64`, no comment. */
  ssh: string;
}

/** The key bits an SSH public-key blob carries (Ed25519: 32 bytes; ECDSA: the point). */
function sshKeyBits(blob: Uint8Array): Uint8Array {
  const r = new SshReader(blob);
  const type = r.text();
  if (type !== "ssh-ed25519") r.text(); // ECDSA: the curve name precedes the point
  return r.bytes();
}

/** SPKI key bits if `der` is a DER SubjectPublicKeyInfo that re-encodes identically; else null. */
function canonicalSpkiBits(der: Uint8Array): Uint8Array | null {
  const layout = canonicalSpkiLayout(der);
  if (layout) return der.subarray(layout.prefix.length);
  try {
    const spki = AsnConvert.parse(der, SubjectPublicKeyInfo);
    const again = new Uint8Array(AsnConvert.serialize(spki));
    if (!bytesEqual(again, der)) return null;
    return new Uint8Array(spki.subjectPublicKey);
  } catch {
    return null;
  }
}

/**
 * Validates `public_tls_key` and `public_ssh_key`: each must be an Ed25519 or
 * P-256 key and both the same key. Throws `BadParameterError` naming the field.
 */
export async function parseSubjectKey(tlsPem: string, sshLine: string): Promise<SubjectKey> {
  let der: Uint8Array;
  let tlsKey: CryptoKey;
  try {
    der = fromPem("PUBLIC KEY", tlsPem);
    tlsKey = await importSpki(der);
  } catch (e) {
    throw inContext("public_tls_key", e, "BAD_PARAMETER", { path: "public_tls_key" });
  }
  let ssh: Awaited<ReturnType<typeof parseAuthorizedKey>>;
  try {
    ssh = await parseAuthorizedKey(sshLine);
  } catch (e) {
    throw inContext("public_ssh_key", e, "BAD_PARAMETER", { path: "public_ssh_key" });
  }
  const mismatch = () =>
    new BadParameterError("public_ssh_key must be the same key as public_tls_key", {
      details: { path: "public_ssh_key" },
    });
  if (algOf(tlsKey) !== algOf(ssh.key)) throw mismatch();
  const spkiBits = canonicalSpkiBits(der);
  if (spkiBits !== null && bytesEqual(spkiBits, sshKeyBits(ssh.blob))) {
    return {
      key: tlsKey,
      spki: der,
      tlsPem: toPem("PUBLIC KEY", der),
      ssh: `${ssh.type} ${toBase64(ssh.blob)}`,
    };
  }
  // Unusual encodings (non-canonical DER, compressed points): compare the keys themselves.
  if (!(await publicKeysEqual(tlsKey, ssh.key))) throw mismatch();
  const spki = await exportSpki(tlsKey);
  return {
    key: tlsKey,
    spki,
    tlsPem: toPem("PUBLIC KEY", spki),
    ssh: await toAuthorizedKey(ssh.key),
  };
}
