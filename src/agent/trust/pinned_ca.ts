/**
 * Trusting the auth service by CA pin (what `tctl status` prints): the
 * policy, runtime-free. The first contact with the server cannot be
 * verified, so the runtime supplies a {@linkcode FirstContact}: one TLS
 * connection with verification off that reports the server's leaf
 * certificate and the raw answer to `GET /v1/ca/host`. A CA from that answer
 * is accepted only if its SPKI hash equals a pin AND its key signed the
 * leaf; it is saved to storage (`host_ca.pem`) so later runs start from it
 * and skip the unverified step.
 *
 * @module
 */
import type { z } from "zod";
import { KeyboundError } from "../../errors.ts";
import { CaResponse, HOST_CA_PATH } from "../../protocol/discovery.ts";
import {
  certificatesFromPem,
  certificateToPem,
  parseCertificate,
  spkiPin,
  verifyCertificateSignature,
} from "../../pki/mod.ts";
import { type AgentStorage, readText, STORAGE_FILES, writeText } from "../storage.ts";

/** Path the host CA is served at (docs/protocol.md §3). */
export { HOST_CA_PATH };

/** What the unverified first contact saw: the leaf certificate and the HTTP answer. */
export interface FirstContactResult {
  /** The server's TLS leaf certificate, DER, unverified. */
  leafDer: Uint8Array;
  /** HTTP status of `GET /v1/ca/host`. */
  status: number;
  /** The answer's body. */
  body: string;
}

/**
 * One unverified TLS connection to `baseUrl` that sends `GET /v1/ca/host`
 * (the runtime's raw socket; throws `CONNECTION_FAILED` if it cannot).
 */
export type FirstContact = (baseUrl: string) => Promise<FirstContactResult>;

/** The part of the `/v1/ca/host` answer the pin check reads. */
const HostCaTls = CaResponse.pick({ tls_ca_certs: true });

/**
 * Learns the host CA over the unverified first contact and accepts it only
 * if its SPKI pin is in `pins` and it signed the server's certificate.
 * Returns the CA's PEM; throws `CONNECTION_FAILED` naming what did not match.
 *
 * @example
 * ```ts ignore
 * const pem = await learnPinnedCa("https://auth.example.com:3025", ["sha256:…"], firstContact);
 * ```
 */
export async function learnPinnedCa(
  baseUrl: string,
  pins: string[],
  firstContact: FirstContact,
): Promise<string> {
  const { leafDer, status, body } = await firstContact(baseUrl);
  if (status !== 200) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `${baseUrl}${HOST_CA_PATH} answered HTTP ${status}; is this a Keybound auth service?`,
    );
  }
  let reply: z.infer<typeof HostCaTls> | undefined;
  try {
    reply = HostCaTls.parse(JSON.parse(body));
  } catch {
    reply = undefined;
  }
  if (!reply) {
    throw new KeyboundError(
      "CONNECTION_FAILED",
      `${baseUrl}${HOST_CA_PATH} did not answer with host CA certificates; is this a Keybound auth service?`,
    );
  }
  const leaf = parseCertificate(leafDer);
  const wanted = new Set(pins.map((p) => p.toLowerCase()));
  const seen: string[] = [];
  for (const pem of reply.tls_ca_certs) {
    for (const der of certificatesFromPem(pem)) {
      const ca = parseCertificate(der);
      const pin = await spkiPin(ca);
      seen.push(pin);
      if (!wanted.has(pin)) continue;
      if (!await verifyCertificateSignature(leaf, await ca.publicKey())) {
        throw new KeyboundError(
          "CONNECTION_FAILED",
          `${baseUrl}: the server's TLS certificate was not issued by the pinned host CA; refusing to connect`,
        );
      }
      return certificateToPem(der);
    }
  }
  throw new KeyboundError(
    "CONNECTION_FAILED",
    `${baseUrl}: the host CA the server presents (${seen.join(", ") || "none"}) matches none of ` +
      `onboarding.ca_pins; refusing to connect (check the pin with \`tctl status\`)`,
  );
}

/** The pinned CA saved by an earlier run, if it still matches a pin. */
async function savedPinnedCa(storage: AgentStorage, pins: string[]): Promise<string | null> {
  const pem = await readText(storage, STORAGE_FILES.hostCa);
  if (!pem) return null;
  try {
    const pin = await spkiPin(parseCertificate(certificatesFromPem(pem)[0]));
    return pins.some((p) => p.toLowerCase() === pin) ? pem : null;
  } catch {
    return null;
  }
}

/**
 * The CA to verify the auth service against under `pins`: the one saved by
 * an earlier run if it still matches a pin, otherwise one learned through
 * `firstContact` (and saved).
 *
 * @example
 * ```ts ignore
 * const pem = await pinnedHostCa(baseUrl, config.onboarding.ca_pins, storage, firstContact);
 * const verifiedFetch = runtimeFetchTrusting([pem]);
 * ```
 */
export async function pinnedHostCa(
  baseUrl: string,
  pins: string[],
  storage: AgentStorage,
  firstContact: FirstContact,
): Promise<string> {
  const saved = await savedPinnedCa(storage, pins);
  if (saved) return saved;
  const pem = await learnPinnedCa(baseUrl, pins, firstContact);
  await writeText(storage, STORAGE_FILES.hostCa, pem);
  return pem;
}

/**
 * Checks that the file `onboarding.ca_path` names holds a PEM certificate;
 * throws `CONFIG_INVALID` naming the file otherwise.
 */
export function checkCaFile(pem: string, path: string): void {
  try {
    certificatesFromPem(pem);
  } catch (cause) {
    throw new KeyboundError(
      "CONFIG_INVALID",
      `onboarding.ca_path: ${path} holds no PEM certificate`,
      { cause },
    );
  }
}
