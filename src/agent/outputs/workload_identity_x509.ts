/**
 * The `workload-identity-x509` output: an X.509 SVID in the files
 * spiffe-helper and Teleport use: `svid.pem` (leaf, then any
 * intermediates), `svid_key.pem` (PKCS#8) and `svid_bundle.pem` (the trust
 * domain's CA certificates).
 *
 * @module
 */
import { exportSpkiPem, generateStorableKeyPair } from "../../crypto/keys.ts";
import { X509_SVID_PATH, X509SvidResponse } from "../../protocol/workload_messages.ts";
import type { BotIdentity } from "../identity.ts";
import { writeText } from "../storage.ts";
import { IssuingOutput, type IssuingOutputOptions, ttlSeconds } from "./workload_common.ts";

/** File names the output writes. */
export const X509_SVID_FILES = {
  /** Leaf certificate then intermediates, PEM. */
  svid: "svid.pem",
  /** SVID private key, PKCS#8 PEM. */
  key: "svid_key.pem",
  /** Trust bundle: the SPIFFE CA certificates, PEM. */
  bundle: "svid_bundle.pem",
} as const;

function pemJoin(pems: string[]): string {
  return pems.map((p) => p.trimEnd() + "\n").join("");
}

/** Writes an X.509 SVID of the selected workload identity. */
export class WorkloadIdentityX509Output extends IssuingOutput {
  readonly type = "workload-identity-x509";
  #selector: string;

  /**
   * Creates the output.
   *
   * @param o destination, API and lifetime
   * @param selectorName the `workload_identity` to issue from
   */
  constructor(o: IssuingOutputOptions, selectorName: string) {
    super(o);
    this.#selector = selectorName;
  }

  async write(identity: BotIdentity): Promise<void> {
    // P-256: SVIDs end up in arbitrary TLS stacks, and some refuse Ed25519.
    const key = await generateStorableKeyPair("ES256");
    const r = await this.options.api.post(identity, X509_SVID_PATH, {
      selector: { name: this.#selector },
      public_key: await exportSpkiPem(key.publicKey),
      ttl_seconds: ttlSeconds(this.options.credentialTtlMs),
    }, X509SvidResponse);
    const dest = this.options.destination;
    await writeText(dest, X509_SVID_FILES.bundle, pemJoin(r.bundle));
    await writeText(dest, X509_SVID_FILES.key, key.pkcs8Pem);
    await writeText(dest, X509_SVID_FILES.svid, pemJoin([r.svid, ...r.chain]));
  }
}
