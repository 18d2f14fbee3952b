/**
 * What the admin API shows of a CA: its rotation status with every trusted
 * key (pins, fingerprints, key ids), and its trusted keys in each format an
 * export needs. Public material only.
 *
 * @module
 */
import { publicKeyToSshBlob, sshFingerprint } from "../../crypto/ssh_wire.ts";
import { parseCertificate, spkiPin } from "../../pki/mod.ts";
import type { CaExport, CaKeyStatus, CaStatus } from "../../protocol/ca_rotation.ts";
import type { CertAuthority, TlsCaKey } from "../context.ts";
import { jwtKeySet } from "../workload/bundle.ts";

/** `sha256:<hex>` of a CA key's SubjectPublicKeyInfo (Teleport's CA pin). */
export function tlsPin(key: TlsCaKey): Promise<string> {
  // spkiPin hashes a Uint8Array as it is: pass the parsed certificate so its SPKI is hashed.
  return spkiPin(parseCertificate(key.certDer));
}

/** How many key sets `ca` trusts: 1 in standby, 2 during a rotation. */
export function trustedKeySets(ca: CertAuthority): number {
  return Math.max(ca.trustedTls.length, ca.trustedSsh.length, ca.jwt?.length ?? 0);
}

/** Every trusted key of `ca`, the signing key first. */
export async function keyStatuses(ca: CertAuthority): Promise<CaKeyStatus[]> {
  const n = trustedKeySets(ca);
  // Index 0 is the signing set, 1 the other; a set may lack the Ed25519 key.
  const ed25519 = [ca.tlsEd25519, ca.trustedTlsEd25519.find((k) => k !== ca.tlsEd25519)];
  const out: CaKeyStatus[] = [];
  for (let i = 0; i < n; i++) {
    const tls = ca.trustedTls[i];
    const ed = ed25519[i];
    const ssh = ca.trustedSsh[i];
    const jwt = ca.jwt?.[i];
    out.push({
      role: i === 0 ? "signing" : "trusted",
      ...(tls ? { tls_pin: await tlsPin(tls) } : {}),
      ...(ed ? { tls_ed25519_pin: await tlsPin(ed) } : {}),
      ...(ssh
        ? { ssh_fingerprint: await sshFingerprint(await publicKeyToSshBlob(ssh.keyPair.publicKey)) }
        : {}),
      ...(jwt ? { kid: jwt.kid } : {}),
      ...(ca.type === "host" && tls ? { serves_tls: tls === ca.serverTls } : {}),
    });
  }
  return out;
}

/** The status of a CA as `tctl status` shows it. */
export async function caStatus(ca: CertAuthority): Promise<CaStatus> {
  const r = ca.rotation;
  return {
    type: ca.type,
    phase: r.phase,
    ...(r.mode ? { mode: r.mode } : {}),
    ...(r.id ? { rotation_id: r.id } : {}),
    ...(r.started ? { started: r.started } : {}),
    ...(r.grace_period_s ? { grace_period_s: r.grace_period_s } : {}),
    ...(r.phase_changed_at ? { phase_changed_at: r.phase_changed_at } : {}),
    ...(r.schedule ? { schedule: r.schedule } : {}),
    ...(r.last_rotated ? { last_rotated: r.last_rotated } : {}),
    keys: await keyStatuses(ca),
    dropped_keys: ca.dropped.length,
  };
}

/** Every trusted key of `ca` in each format it has, the signing key first. */
export async function caExport(ca: CertAuthority): Promise<CaExport> {
  return {
    type: ca.type,
    tls_ca_certs: ca.trustedTls.map((k) => k.certPem),
    ...(ca.trustedTlsEd25519.length > 0
      ? { tls_ed25519_ca_certs: ca.trustedTlsEd25519.map((k) => k.certPem) }
      : {}),
    ssh_ca_keys: ca.trustedSsh.map((k) => k.publicKey),
    jwks: { keys: ca.jwt ? await jwtKeySet(ca, "sig") : [] },
  };
}
