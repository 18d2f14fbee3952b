/**
 * The `ssh_host` output: a host key, an OpenSSH host certificate for it from
 * the cluster's host CA, and the user CA keys for sshd's `TrustedUserCAKeys`
 * — Teleport's file names `ssh_host`, `ssh_host-cert.pub` and
 * `ssh_host-user-ca.pub`.
 *
 * The host key is kept across renewals; only its certificate is replaced.
 * sshd loads `HostKey` and `HostCertificate` as a pair, and in its default
 * re-exec mode it reads them again for every connection: replacing both
 * files can never be one atomic step, so a connection arriving between the
 * two writes found a certificate for another key and the login failed.
 * With one key, each renewal is one atomic rename of the certificate.
 *
 * @module
 */
import { generateStorableKeyPair, importPkcs8Pem } from "../../crypto/keys.ts";
import { toAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { SSH_HOST_CERT_PATH, SshHostCertResponse } from "../../protocol/workload_messages.ts";
import type { BotIdentity } from "../identity.ts";
import { type AgentStorage, readText, writeText } from "../storage.ts";
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
    const dest = this.options.destination;
    const key = await hostKey(dest);
    const r = await this.options.api.post(identity, SSH_HOST_CERT_PATH, {
      public_key: await toAuthorizedKey(key.publicKey),
      principals: this.#principals,
      ttl_seconds: ttlSeconds(this.options.credentialTtlMs),
    }, SshHostCertResponse);
    // A new key (first write, or the stored one unusable) goes before its certificate:
    // whoever sees the new certificate also finds its key.
    if (key.pkcs8Pem !== undefined) await writeText(dest, SSH_HOST_FILES.key, key.pkcs8Pem);
    await writeText(dest, SSH_HOST_FILES.cert, r.ssh_cert + "\n");
    await writeText(dest, SSH_HOST_FILES.userCa, r.user_ca_keys.join("\n") + "\n");
  }
}

/** The destination's host key when it holds a usable one; otherwise a new one to write. */
async function hostKey(dest: AgentStorage): Promise<{ publicKey: CryptoKey; pkcs8Pem?: string }> {
  const stored = await readText(dest, SSH_HOST_FILES.key);
  if (stored !== null) {
    try {
      const kp = await importPkcs8Pem(stored);
      if (kp.alg === "ES256") return { publicKey: kp.publicKey };
    } catch {
      // Not a key this output wrote: replace it.
    }
  }
  // P-256 in PKCS#8 PEM: a form every OpenSSL-backed sshd loads as a HostKey.
  const key = await generateStorableKeyPair("ES256");
  return { publicKey: key.publicKey, pkcs8Pem: key.pkcs8Pem };
}
