/**
 * Moving the bot's trust in the auth service across a host CA rotation it
 * slept through (docs/protocol.md §10): its stored host CAs no longer verify
 * the server, so it makes one unverified first contact (the pin machinery's
 * {@linkcode FirstContact}) and accepts a served host CA only if
 *
 * - its key is one the bot trusts already, or a `cross_signed` certificate
 *   for its key verifies under a key the bot trusts (a chain of them
 *   covers several rotations), AND
 * - that CA's key signed the server's TLS leaf.
 *
 * Nothing else from the unverified answer is used.
 *
 * @module
 */
import type * as z from "zod";
import { importSpki } from "../../crypto/keys.ts";
import { KeyboundError } from "../../errors.ts";
import { CaResponse, HOST_CA_PATH } from "../../protocol/discovery.ts";
import { resendingAfterReset } from "../../protocol/http_client.ts";
import {
  type CaCandidate,
  readCaCandidate,
  readSignedParts,
  signedBy,
} from "../../pki/cert_fields.ts";
import { certificatesFromPem, certificateToPem } from "../../pki/pem.ts";
import { toHex } from "../../util/encoding.ts";
import type { FirstContact } from "./pinned_ca.ts";

/** The part of the `/v1/ca/host` answer the cross-signature check reads. */
const HostCaChain = CaResponse.pick({ tls_ca_certs: true, cross_signed: true });

/**
 * A certificate of the answer as this check reads it: the DER walk of
 * ../../pki/cert_fields.ts, not the full parser (a CommonJS library that would
 * stay resident for the daemon's life once it healed).
 */
interface Candidate extends CaCandidate {
  /** The whole certificate, DER. */
  der: Uint8Array;
  /** Its subject key, imported once. */
  publicKey(): Promise<CryptoKey>;
}

/** Reads every certificate of a PEM list; one that does not read is skipped. */
function readAll(pems: string[]): Candidate[] {
  const out: Candidate[] = [];
  for (const pem of pems) {
    let ders: Uint8Array[];
    try {
      ders = certificatesFromPem(pem);
    } catch {
      continue;
    }
    for (const der of ders) {
      try {
        const c = readCaCandidate(der);
        let key: Promise<CryptoKey> | undefined;
        out.push({ ...c, der, publicKey: () => key ??= importSpki(c.spki) });
      } catch {
        // not a certificate: ignored, like any other unusable entry of the answer
      }
    }
  }
  return out;
}

const keyId = (c: Candidate) => toHex(c.spki);

/**
 * The keys trusted after following `crossSigned` from `trusted`: a
 * cross-signed CA certificate adds its key when it is a CA, is within its
 * validity at `now` and its signature verifies under a key already in the
 * set. Repeats until nothing changes, so old → mid → new works.
 */
async function followCrossSignatures(
  trusted: Candidate[],
  crossSigned: Candidate[],
  now: Date,
): Promise<Map<string, Candidate>> {
  const keys = new Map(trusted.map((c) => [keyId(c), c] as const));
  let pending = crossSigned.filter((x) => x.isCA && now >= x.notBefore && now < x.notAfter);
  for (let grew = true; grew;) {
    grew = false;
    const left: Candidate[] = [];
    for (const x of pending) {
      if (keys.has(keyId(x))) continue;
      let signedByTrusted = false;
      for (const issuer of keys.values()) {
        if (await signedBy(await issuer.publicKey(), x)) {
          signedByTrusted = true;
          break;
        }
      }
      if (signedByTrusted) {
        keys.set(keyId(x), x);
        grew = true;
      } else left.push(x);
    }
    pending = left;
  }
  return keys;
}

/**
 * Learns the host CAs to trust from now on, starting from `trustedPems`
 * (the CAs the bot trusts now, which no longer verify the server). Returns
 * the served host CA certificates whose keys are trusted through the rule
 * above, as PEM, the one that signed the server's leaf first; throws
 * `TLS_UNTRUSTED` when none qualifies, `CONNECTION_FAILED` when the answer
 * is not a host CA list.
 *
 * @example
 * ```ts ignore
 * const pems = await learnCrossSignedCa(baseUrl, storedHostCas, firstContact, new Date());
 * ```
 */
export async function learnCrossSignedCa(
  baseUrl: string,
  trustedPems: string[],
  firstContact: FirstContact,
  now: Date,
): Promise<string[]> {
  const { leafDer, status, body } = await resendingAfterReset(() => firstContact(baseUrl));
  let reply: z.infer<typeof HostCaChain> | undefined;
  try {
    if (status === 200) reply = HostCaChain.parse(JSON.parse(body));
  } catch {
    reply = undefined;
  }
  if (!reply) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `${baseUrl}${HOST_CA_PATH} did not answer with host CA certificates (HTTP ${status})`,
    );
  }
  const leaf = readSignedParts(leafDer);
  const trustedKeys = await followCrossSignatures(
    readAll(trustedPems),
    readAll(reply.cross_signed ?? []),
    now,
  );
  let signer: string | undefined;
  const accepted: string[] = [];
  for (const ca of readAll(reply.tls_ca_certs)) {
    if (!ca.isCA || !trustedKeys.has(keyId(ca))) continue;
    // Saved as a trust root: every signed byte must come from the key's holder (host CA
    // certificates are self-signed), not only the key, as for the pin (pinned_ca.ts).
    if (!await signedBy(await ca.publicKey(), ca)) continue;
    const pem = certificateToPem(ca.der);
    if (accepted.includes(pem)) continue;
    if (!signer && await signedBy(await ca.publicKey(), leaf)) signer = pem;
    else accepted.push(pem);
  }
  if (!signer) {
    throw new KeyboundError(
      "TLS_UNTRUSTED",
      `${baseUrl}: the server's certificate is not issued by a host CA this bot trusts, and no ` +
        `cross-signed certificate links the CA it presents to one; refusing to connect`,
    );
  }
  return [signer, ...accepted];
}
