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
import { KeyboundError } from "../../errors.ts";
import { CaResponse, HOST_CA_PATH } from "../../protocol/discovery.ts";
import { resendingAfterReset } from "../../protocol/http_client.ts";
import { certificatesFromPem, certificateToPem } from "../../pki/pem.ts";
import type { ParsedCertificate } from "../../pki/x509_parse.ts";
import { toHex } from "../../util/encoding.ts";
import type { FirstContact } from "./pinned_ca.ts";

/** The part of the `/v1/ca/host` answer the cross-signature check reads. */
const HostCaChain = CaResponse.pick({ tls_ca_certs: true, cross_signed: true });

/** The full certificate parser, loaded on this rare path only (a CommonJS library). */
type Parser = typeof import("../../pki/x509_parse.ts");

/** Parses every certificate of a PEM list; one that does not parse is skipped. */
function parseAll(x509: Parser, pems: string[]): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  for (const pem of pems) {
    let ders: Uint8Array[];
    try {
      ders = certificatesFromPem(pem);
    } catch {
      continue;
    }
    for (const der of ders) {
      try {
        out.push(x509.parseCertificate(der));
      } catch {
        // not a certificate: ignored, like any other unusable entry of the answer
      }
    }
  }
  return out;
}

const keyId = (c: ParsedCertificate) => toHex(c.spki);

/**
 * The keys trusted after following `crossSigned` from `trusted`: a
 * cross-signed CA certificate adds its key when it is a CA, is within its
 * validity at `now` and its signature verifies under a key already in the
 * set. Repeats until nothing changes, so old → mid → new works.
 */
async function followCrossSignatures(
  x509: Parser,
  trusted: ParsedCertificate[],
  crossSigned: ParsedCertificate[],
  now: Date,
): Promise<Map<string, ParsedCertificate>> {
  const keys = new Map(trusted.map((c) => [keyId(c), c] as const));
  let pending = crossSigned.filter((x) => x.isCA && now >= x.notBefore && now < x.notAfter);
  for (let grew = true; grew;) {
    grew = false;
    const left: ParsedCertificate[] = [];
    for (const x of pending) {
      if (keys.has(keyId(x))) continue;
      let signedByTrusted = false;
      for (const issuer of keys.values()) {
        if (await x509.verifyCertificateSignature(x, await issuer.publicKey())) {
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
  const x509 = await import("../../pki/x509_parse.ts");
  const leaf = x509.parseCertificate(leafDer);
  const trustedKeys = await followCrossSignatures(
    x509,
    parseAll(x509, trustedPems),
    parseAll(x509, reply.cross_signed ?? []),
    now,
  );
  let signer: string | undefined;
  const accepted: string[] = [];
  for (const ca of parseAll(x509, reply.tls_ca_certs)) {
    if (!ca.isCA || !trustedKeys.has(keyId(ca))) continue;
    // Saved as a trust root: every signed byte must come from the key's holder (host CA
    // certificates are self-signed), not only the key, as for the pin (pinned_ca.ts).
    if (!await x509.verifyCertificateSignature(ca, await ca.publicKey())) continue;
    const pem = certificateToPem(ca.der);
    if (accepted.includes(pem)) continue;
    if (!signer && await x509.verifyCertificateSignature(leaf, await ca.publicKey())) signer = pem;
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
