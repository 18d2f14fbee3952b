/**
 * Trusting the auth service by CA pin (what `tctl status` prints): the
 * policy, runtime-free. The first contact with the server cannot be
 * verified, so the runtime supplies a {@linkcode FirstContact}: one TLS
 * connection with verification off that reports the server's leaf
 * certificate and the raw answer to `GET /v1/ca/host`. A CA from that answer
 * is accepted only if its SPKI hash equals a pin, its key signed the leaf
 * AND its own certificate (host CAs are self-signed); it is saved to storage (`host_ca.pem`) so later runs start from it
 * and skip the unverified step. Join results then move that trust across CA
 * rotations (`host_trust.ts`).
 *
 * @module
 */
import type * as z from "zod";
import { importSpki } from "../../crypto/keys.ts";
import { KeyboundError } from "../../errors.ts";
import { CaResponse, HOST_CA_PATH } from "../../protocol/discovery.ts";
import { resendingAfterReset } from "../../protocol/http_client.ts";
import {
  readCertificateFields,
  readSignedParts,
  signedBy,
  spkiPin,
} from "../../pki/cert_fields.ts";
import { certificatesFromPem, certificateToPem } from "../../pki/pem.ts";
import { writeFilesTogether } from "../journal.ts";
import { type AgentStorage, readText, STORAGE_FILES, writeText } from "../storage.ts";
import { readHostCas } from "./host_trust.ts";

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
 * (the runtime's raw socket). Throws `CONNECTION_RESET_BEFORE_SEND` when the
 * connection was reset before the request was written (its callers send
 * again, as the request client does), `CONNECTION_FAILED` for any other
 * failure.
 */
export type FirstContact = (baseUrl: string) => Promise<FirstContactResult>;

/** The part of the `/v1/ca/host` answer the pin check reads. */
const HostCaTls = CaResponse.pick({ tls_ca_certs: true });

/**
 * Learns the host CA over the unverified first contact and accepts it only
 * if its SPKI pin is in `pins`, it signed the server's certificate and its
 * own (every pinned CA listed is tried: during a rotation the server lists
 * two, and a bot may pin both).
 * Returns the CA's PEM. A server that fails the pin is `TLS_UNTRUSTED` (a
 * security failure, which a daemon does not retry); one that answers no host
 * CA is `CONNECTION_FAILED`.
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
  const { leafDer, status, body } = await resendingAfterReset(() => firstContact(baseUrl));
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
      `${baseUrl}${HOST_CA_PATH} did not answer with host CA certificates; ` +
        "is this a Keybound auth service?",
    );
  }
  // The DER walk, not the full parser (a CommonJS library that would stay resident for the
  // daemon's life, ~1.5 MB): the check needs only the leaf's signed parts and the CAs' SPKIs.
  const leaf = readSignedParts(leafDer);
  const wanted = new Set(pins.map((p) => p.toLowerCase()));
  const seen: string[] = [];
  let refusal: string | undefined;
  for (const pem of reply.tls_ca_certs) {
    for (const der of certificatesFromPem(pem)) {
      const ca = readSignedParts(der);
      const pin = await spkiPin(ca);
      seen.push(pin);
      if (!wanted.has(pin)) continue;
      const key = await importSpki(ca.spki);
      if (!await signedBy(key, leaf)) {
        refusal ??= "the server's TLS certificate was not issued by the pinned host CA";
        continue;
      }
      // The certificate is saved as the trust root of every later connection: all of
      // its signed bytes must come from whoever holds the pinned key. Otherwise anyone
      // on the path could hand over the pinned key in a certificate the TLS stack
      // refuses later (a bad extension, another subject), and the bot would be stuck on
      // the saved file until someone deletes it.
      if (!await signedBy(key, ca)) {
        refusal = "the pinned host CA's certificate is not signed by its own key";
        continue;
      }
      return certificateToPem(der);
    }
  }
  if (refusal) {
    throw new KeyboundError("TLS_UNTRUSTED", `${baseUrl}: ${refusal}; refusing to connect`);
  }
  throw new KeyboundError(
    "TLS_UNTRUSTED",
    `${baseUrl}: the host CA the server presents (${seen.join(", ") || "none"}) matches none of ` +
      `onboarding.ca_pins; refusing to connect (check the pin with \`tctl status\`)`,
  );
}

/**
 * The host CAs saved by an earlier run, if they descend from one of `pins`:
 * one of them matches a pin, or `host_ca_pins` (written at the first pin)
 * names one. The second case is a bot whose trust moved on through a CA
 * rotation while its configuration still names the old CA's pin.
 */
async function savedPinnedCas(storage: AgentStorage, pins: string[]): Promise<string[] | null> {
  const pems = await readHostCas(storage);
  if (pems.length === 0) return null;
  const wanted = new Set(pins.map((p) => p.toLowerCase()));
  const lineage = (await readText(storage, STORAGE_FILES.hostCaPins) ?? "").split("\n");
  if (lineage.some((p) => wanted.has(p.trim().toLowerCase()))) return pems;
  for (const pem of pems) {
    try {
      if (wanted.has(await spkiPin(readCertificateFields(certificatesFromPem(pem)[0])))) {
        // Saved before host_ca_pins existed: record the lineage while it is provable.
        await writeText(storage, STORAGE_FILES.hostCaPins, pins.join("\n") + "\n");
        return pems;
      }
    } catch {
      // an unreadable entry proves nothing
    }
  }
  return null;
}

/**
 * The CAs to verify the auth service against under `pins`: the ones saved
 * by an earlier run if they descend from a pin (see above), otherwise the
 * one learned through `firstContact` (saved, with the pins as its lineage).
 *
 * @example
 * ```ts ignore
 * const pems = await pinnedHostCas(baseUrl, config.onboarding.ca_pins, storage, firstContact);
 * const verifiedFetch = runtimeFetchTrusting(pems);
 * ```
 */
export async function pinnedHostCas(
  baseUrl: string,
  pins: string[],
  storage: AgentStorage,
  firstContact: FirstContact,
): Promise<string[]> {
  const saved = await savedPinnedCas(storage, pins);
  if (saved) return saved;
  const pem = await learnPinnedCa(baseUrl, pins, firstContact);
  await writeFilesTogether(storage, {
    [STORAGE_FILES.hostCa]: pem,
    [STORAGE_FILES.hostCaPins]: pins.join("\n") + "\n",
    [STORAGE_FILES.trustBundle]: null,
  });
  return [pem];
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
