/**
 * The bot's trust in the auth service across CA rotations (docs/protocol.md
 * §10). Three storage files:
 *
 * - `host_ca.pem`: every host CA the bot verifies the auth service with,
 *   learned by the first pin, then replaced by the host CAs of each join
 *   result's `trust_bundle` (so it moves to the new host CA during `init` /
 *   `update_clients`, before the server presents a certificate from it);
 * - `host_ca_pins`: the `onboarding.ca_pins` the saved CAs descend from, so
 *   a bot whose pins name the pre-rotation CA keeps its moved trust;
 * - `trust_bundle.json`: the last trust bundle as received, with the time it
 *   was received: the last time the saved CAs were confirmed over a verified
 *   channel, which bounds how late a cross-signed heal is accepted.
 *
 * {@linkcode HostTrust} is the fetch that follows those files, and heals a
 * bot that slept through a rotation (its saved CAs no longer verify the
 * server) through the cross-signature rule of `cross_signed.ts`.
 *
 * @module
 */
import { errorMessage, isKeyboundError, KeyboundError } from "../../errors.ts";
import { certificatesFromPem, certificateToPem } from "../../pki/pem.ts";
import type { TrustBundle } from "../../protocol/messages.ts";
import { TrustBundleSchema } from "../../protocol/messages.ts";
import * as z from "zod";
import type { Logger } from "../../util/log.ts";
import { type AgentStorage, readText, STORAGE_FILES, writeText } from "../storage.ts";
import { learnCrossSignedCa } from "./cross_signed.ts";
import type { FirstContact } from "./pinned_ca.ts";

/** Each certificate of a PEM text as its own PEM, in order; unreadable text gives none. */
export function splitPems(text: string | null): string[] {
  if (!text) return [];
  try {
    return certificatesFromPem(text).map((der) => certificateToPem(der));
  } catch {
    return [];
  }
}

/** The host CAs saved in storage (`host_ca.pem`), one PEM each; empty when none. */
export async function readHostCas(storage: AgentStorage): Promise<string[]> {
  return splitPems(await readText(storage, STORAGE_FILES.hostCa));
}

/** `host_ca.pem` text for a list of CA certificates. */
export function hostCaText(pems: string[]): string {
  return pems.map((p) => p.trimEnd() + "\n").join("");
}

/**
 * How long after the saved host CAs were last confirmed a cross-signed heal
 * may still be legitimate: the longest grace period a rotation may take
 * (90 days) plus how long the server serves cross-signed certificates after
 * it (30 days; docs/protocol.md §10). Past it, only whoever holds a dropped
 * host key could offer one, so the bot refuses and must be re-pinned.
 */
export const CROSS_SIGNED_HEAL_WINDOW_MS = (90 + 30) * 24 * 3600 * 1000;

const StoredTrustBundle = z.strictObject({
  received_at: z.iso.datetime(),
  trust_bundle: TrustBundleSchema,
});

/** A stored trust bundle and when it was received. */
export interface ReceivedTrustBundle {
  /** The bundle as the server sent it. */
  bundle: TrustBundle;
  /** When it was received (over the channel the bot trusted then). */
  receivedAt: Date;
}

/**
 * The files a join result's trust bundle replaces, for the group write that
 * stores the result: `trust_bundle.json` and `host_ca.pem`.
 *
 * @example
 * ```ts ignore
 * await writeFilesTogether(storage, {
 *   ...identityFiles,
 *   ...trustBundleFiles(result.trust_bundle, new Date()),
 * });
 * ```
 */
export function trustBundleFiles(bundle: TrustBundle, receivedAt: Date): Record<string, string> {
  return {
    [STORAGE_FILES.trustBundle]: JSON.stringify({
      received_at: receivedAt.toISOString(),
      trust_bundle: bundle,
    }),
    [STORAGE_FILES.hostCa]: hostCaText(bundle.host.tls_ca_certs),
  };
}

/** The stored trust bundle and when it came, validated; null when absent or unreadable. */
export async function readTrustBundle(storage: AgentStorage): Promise<ReceivedTrustBundle | null> {
  const text = await readText(storage, STORAGE_FILES.trustBundle);
  if (!text) return null;
  try {
    const stored = StoredTrustBundle.parse(JSON.parse(text));
    return { bundle: stored.trust_bundle, receivedAt: new Date(stored.received_at) };
  } catch {
    return null;
  }
}

/**
 * Whether the runtime's own root store (the public web CAs, a root the host
 * added) may vouch for the auth service besides the CAs the bot names. Only
 * in the system-roots mode, which is that choice: a pin or a CA file says
 * exactly which CAs sign the auth service, so a certificate for its name
 * from any other CA (mis-issued, a TLS-inspection root) is refused, on every
 * connection and not only the first (docs/security.md "Transport").
 *
 * @example
 * ```ts ignore
 * const anyRoot = trustsRuntimeRoots(trust.mode); // false for "pins" and "ca_path"
 * ```
 */
export function trustsRuntimeRoots(mode: "system" | "ca_path" | "pins"): boolean {
  return mode === "system";
}

/** Options of {@linkcode HostTrust}. */
export interface HostTrustOptions {
  /** The auth service. */
  baseUrl: string;
  /** The bot's storage (`host_ca.pem`). */
  storage: AgentStorage;
  /** CAs configured by the operator (`onboarding.ca_path`), trusted besides the saved ones. */
  configured?: string[];
  /** The host CAs saved in storage at start (after any first pin). */
  saved: string[];
  /**
   * The runtime's fetch verifying the server against `pems`, and against
   * the runtime's own roots only where {@linkcode trustsRuntimeRoots} allows
   * it; it must report a certificate that does not verify as `TLS_UNTRUSTED`.
   */
  fetchTrusting(pems: string[]): typeof fetch;
  /**
   * One unverified TLS contact (see `pinned_ca.ts`); without it (trust that is
   * not by pin: a CA file or the system roots, which the operator moves) the
   * bot never heals by a cross-signature.
   */
  firstContact?: FirstContact;
  /** Time source, for the validity of cross-signed certificates. */
  now(): Date;
  /** Logger. */
  log: Logger;
}

/**
 * The fetch to the auth service that follows the bot's host trust: rebuilt
 * when {@linkcode HostTrust.update} moves the trusted CAs, and healed once
 * per failure when the saved CAs no longer verify the server (a rotation
 * the bot slept through).
 */
export class HostTrust {
  #o: HostTrustOptions;
  #saved: string[];
  #fetch: typeof fetch;
  #healing: Promise<void> | null = null;

  /** @param options storage, saved CAs and the runtime's transport */
  constructor(options: HostTrustOptions) {
    this.#o = options;
    this.#saved = splitPems(hostCaText(options.saved));
    this.#fetch = this.#build();
  }

  /** The saved host CAs in use now. */
  get hostCas(): string[] {
    return [...this.#saved];
  }

  /**
   * Moves the trust to `pems` (already written to storage by whoever
   * received them); the next request verifies the server against them.
   */
  update(pems: string[]): void {
    // Normalised as read back from storage, so an unchanged list (every renewal
    // outside a rotation) keeps the transport and its connections.
    const next = splitPems(hostCaText(pems));
    if (next.join("") === this.#saved.join("")) return;
    this.#saved = next;
    this.#fetch = this.#build();
  }

  /** The fetch: verified against the current trust, healed once on `TLS_UNTRUSTED`. */
  readonly fetch: typeof fetch = async (input, init) => {
    const used = this.#fetch;
    try {
      return await used(input, init);
    } catch (e) {
      // Without saved CAs there is nothing to follow a cross-signature from.
      if (
        !isKeyboundError(e, "TLS_UNTRUSTED") || this.#saved.length === 0 || !this.#o.firstContact
      ) throw e;
      // A concurrent request may have healed it already.
      if (used === this.#fetch) await this.#heal(e);
      // A failed handshake sent nothing: the request is safe to send again.
      return await this.#fetch(input, init);
    }
  };

  #build(): typeof fetch {
    return this.#o.fetchTrusting([...(this.#o.configured ?? []), ...this.#saved]);
  }

  #heal(cause: unknown): Promise<void> {
    this.#healing ??= (async () => {
      const o = this.#o;
      o.log.warn(
        "the auth service's certificate does not verify with the saved host CAs (a CA rotation " +
          "this bot missed?); checking the CA it presents for a cross-signature from them",
        { error: errorMessage(cause) },
      );
      const confirmed = (await readTrustBundle(o.storage))?.receivedAt;
      if (!confirmed || o.now().getTime() - confirmed.getTime() > CROSS_SIGNED_HEAL_WINDOW_MS) {
        throw new KeyboundError(
          "TLS_UNTRUSTED",
          `${errorMessage(cause)}; the saved host CAs were last confirmed ` +
            (confirmed ? `at ${confirmed.toISOString()}` : "by no trust bundle") +
            ", too long ago to follow a rotation by cross-signature: re-pin this bot " +
            `(delete ${STORAGE_FILES.hostCa} and ${STORAGE_FILES.hostCaPins} from its storage ` +
            "and start it with the current --ca-pin)",
          { cause },
        );
      }
      const pems = splitPems(
        hostCaText(await learnCrossSignedCa(o.baseUrl, this.#saved, o.firstContact!, o.now())),
      );
      // The server presents a CA the bot trusts already: the failure is another one (a name
      // the certificate does not carry, say), which no trust move fixes.
      if (pems.join("") === this.#saved.join("")) throw cause;
      // One file, one atomic write: no journal, which a join storing its result may be using.
      await writeText(o.storage, STORAGE_FILES.hostCa, hostCaText(pems));
      o.log.warn("moved the trust in the auth service to its new host CA (cross-signed)", {
        host_cas: pems.length,
      });
      this.update(pems);
    })().finally(() => {
      this.#healing = null;
    });
    return this.#healing;
  }
}
