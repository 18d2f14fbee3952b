/**
 * The `identity` output with its own `credential_ttl` and `renewal_interval`:
 * like Teleport, it writes certificates of its own rather than the bot's. At
 * every renewal it generates a fresh P-256 key and asks the auth service for
 * certificates for it (docs/protocol.md §8.7), then writes Teleport's file
 * names (`key`, `key.pub`, `key-cert.pub`, `tlscert`, `tlscacerts`,
 * `sshcacerts`). The certificates act as the bot's user for SSH and TLS
 * clients, but the auth service never accepts them as the bot's identity.
 *
 * @module
 */
import { exportSpkiPem, generateStorableKeyPair } from "../../crypto/keys.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { IDENTITY_CERT_PATH, IdentityCertResponse } from "../../protocol/output_cert_messages.ts";
import type { BotIdentity } from "../identity.ts";
import { STORAGE_FILES, writeText } from "../storage.ts";
import { IssuingOutput, type IssuingOutputOptions, ttlSeconds } from "./workload_common.ts";

/** Writes identity files for a key and certificates of the output's own. */
export class IssuedIdentityOutput extends IssuingOutput {
  readonly type = "identity";

  /**
   * Creates the output.
   *
   * @param o destination, API and the output's own lifetime
   */
  constructor(o: IssuingOutputOptions) {
    super(o);
  }

  async write(identity: BotIdentity): Promise<void> {
    // P-256: OpenSSH and every TLS stack load it from PKCS#8 PEM.
    const key = await generateStorableKeyPair("ES256");
    const publicSsh = await toAuthorizedKey(key.publicKey);
    const r = await this.options.api.post(identity, IDENTITY_CERT_PATH, {
      public_tls_key: await exportSpkiPem(key.publicKey),
      public_ssh_key: publicSsh,
      ttl_seconds: ttlSeconds(this.options.credentialTtlMs),
    }, IdentityCertResponse);
    const c = r.certificates;
    const dest = this.options.destination;
    // Key first and the TLS certificate last: whoever sees the new certificate also finds its key.
    await writeText(dest, STORAGE_FILES.key, key.pkcs8Pem);
    await writeText(dest, STORAGE_FILES.publicKey, publicSsh + "\n");
    await writeText(dest, STORAGE_FILES.sshCert, c.ssh_cert.trim() + "\n");
    await writeText(dest, STORAGE_FILES.tlsCaCerts, c.tls_ca_certs.map(pemLine).join(""));
    await writeText(
      dest,
      STORAGE_FILES.sshCaCerts,
      c.ssh_ca_keys.map((k) => k.trim() + "\n").join(""),
    );
    await writeText(dest, STORAGE_FILES.tlsCert, pemLine(c.tls_cert));
  }
}

function pemLine(pem: string): string {
  return pem.trimEnd() + "\n";
}
