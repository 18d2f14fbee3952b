/**
 * The `ssh_host` output: a fresh host key, an OpenSSH host certificate for it
 * from the cluster's host CA, and the user CA keys for sshd's
 * `TrustedUserCAKeys` — Teleport's file names `ssh_host`,
 * `ssh_host-cert.pub` and `ssh_host-user-ca.pub`.
 *
 * sshd reads these at start and on SIGHUP; reload it after a renewal.
 *
 * @module
 */
import { generateStorableKeyPair } from "../../crypto/keys.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { SSH_HOST_CERT_PATH, SshHostCertResponse } from "../../protocol/workload_messages.ts";
import type { BotIdentity } from "../identity.ts";
import { writeText } from "../storage.ts";
import { IssuingOutput, type IssuingOutputOptions, ttlSeconds } from "./workload_common.ts";

/** File names the output writes. */
export const SSH_HOST_FILES = {
  /** Host private key, PKCS#8 PEM (sshd `HostKey`). */
  key: "ssh_host",
  /** Host certificate (sshd `HostCertificate`). */
  cert: "ssh_host-cert.pub",
  /** User CA keys, one per line (sshd `TrustedUserCAKeys`). */
  userCa: "ssh_host-user-ca.pub",
} as const;

/** Writes a host key and certificate for `principals`. */
export class SshHostOutput extends IssuingOutput {
  readonly type = "ssh_host";
  #principals: string[];

  /**
   * Creates the output.
   *
   * @param o destination, API and lifetime
   * @param principals host names and addresses the certificate names
   */
  constructor(o: IssuingOutputOptions, principals: string[]) {
    super(o);
    this.#principals = [...principals];
  }

  async write(identity: BotIdentity): Promise<void> {
    // P-256 in PKCS#8 PEM: a form every OpenSSL-backed sshd loads as a HostKey.
    const key = await generateStorableKeyPair("ES256");
    const r = await this.options.api.post(identity, SSH_HOST_CERT_PATH, {
      public_key: await toAuthorizedKey(key.publicKey),
      principals: this.#principals,
      ttl_seconds: ttlSeconds(this.options.credentialTtlMs),
    }, SshHostCertResponse);
    const dest = this.options.destination;
    // Key before certificate: whoever sees the new certificate also finds its key.
    await writeText(dest, SSH_HOST_FILES.key, key.pkcs8Pem);
    await writeText(dest, SSH_HOST_FILES.cert, r.ssh_cert + "\n");
    await writeText(dest, SSH_HOST_FILES.userCa, r.user_ca_keys.join("\n") + "\n");
  }
}
