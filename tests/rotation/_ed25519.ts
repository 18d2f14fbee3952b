/**
 * Helpers of the Ed25519 user-CA tests: the user CA's X.509 certificates as
 * tctl exports them, what signed a join certificate, `openssl verify` of a
 * join result, and a stored user CA record put back in the shape versions
 * before the Ed25519 key wrote.
 *
 * @module
 */
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { KV_FILE } from "../../src/cli/auth/data_dir.ts";
import {
  certificatesFromPem,
  parseCertificate,
  type ParsedCertificate,
} from "../../src/pki/mod.ts";
import { CaResponse } from "../../src/protocol/discovery.ts";
import type { JoinResult } from "../../src/protocol/messages.ts";
import {
  IDENTITY_CERT_PATH,
  IdentityCertResponse,
} from "../../src/protocol/output_cert_messages.ts";
import { signRequest } from "../../src/protocol/signed_request.ts";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { CA_PREFIX } from "../../src/server/keys.ts";
import type { JsonValue } from "../../src/storage/backend.ts";
import type { StoredCa } from "../../src/server/rotation/schema.ts";
import { assert, assertEquals } from "../_assert.ts";
import { eventually, issuerOf, type RotationAuth, type RotationBot } from "./_auth.ts";

/** A PEM certificate, parsed. */
export function certOf(pem: string): ParsedCertificate {
  return parseCertificate(certificatesFromPem(pem)[0]);
}

/** The user CA's P-256 (`pem`) or Ed25519 (`ed25519-pem`) certificates; [] when there are none. */
export async function userCas(
  auth: RotationAuth,
  format: "pem" | "ed25519-pem",
): Promise<string[]> {
  const r = await auth.tctl("auth", "export", "--type=user", `--format=${format}`);
  if (r.code !== 0) {
    assert(/has no Ed25519 X\.509 certificate/.test(r.stderr), r.stderr);
    return [];
  }
  return r.stdout.split(/(?<=-----END CERTIFICATE-----\n)/).filter((s) => s.trim() !== "");
}

/**
 * Asserts that `r`'s X.509 certificate was signed by `signer` (with its
 * algorithm) and that `tls_ca_certs` is exactly `trusted`.
 */
export async function assertIssued(
  r: JoinResult,
  signer: string,
  trusted: string[],
  what: string,
): Promise<void> {
  const cert = certOf(r.certificates.tls_cert);
  assertEquals(await issuerOf(cert, [signer]), signer, `${what}: signer`);
  assertEquals(cert.signatureAlgorithm, certOf(signer).signatureAlgorithm, `${what}: algorithm`);
  assertEquals(r.certificates.tls_ca_certs, trusted, `${what}: tls_ca_certs`);
}

/** `openssl verify -CAfile <tls_ca_certs> <tls_cert>` of a join result: exit code and output. */
export async function opensslVerify(r: JoinResult): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-ed25519-verify-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, r.certificates.tls_ca_certs.join(""));
    await Deno.writeTextFile(`${dir}/cert.pem`, r.certificates.tls_cert);
    const out = await new Deno.Command("openssl", {
      args: ["verify", "-purpose", "sslclient", "-CAfile", `${dir}/ca.pem`, `${dir}/cert.pem`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, out: text };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Removes the Ed25519 X.509 key from the stored user CA record of a stopped
 * auth process's data directory (one compare-and-swap on its Deno KV file):
 * the record as every version before that key wrote it.
 */
export async function storeUserCaWithoutEd25519(dataDir: string): Promise<void> {
  const backend = await DenoKvBackend.open(`${dataDir}/${KV_FILE}`);
  try {
    const key = [...CA_PREFIX, "user"];
    const entry = await backend.get<StoredCa>(key);
    assert(entry?.value.active.tls_ed25519, "the record has the key to remove");
    assertEquals(entry.value.additional, undefined, "in standby");
    const { tls_ed25519: _removed, ...active } = entry.value.active;
    const value = { ...entry.value, active };
    const r = await backend.commit({
      checks: [{ key, version: entry.version }],
      mutations: [{ type: "set", key, value: value as unknown as JsonValue }],
    });
    assert(r.ok);
  } finally {
    await backend.close();
  }
}

/**
 * `standby` for the user CA, then waits until tctl works again: the admin
 * identity file is rewritten on the instance's next CA check (about 1 s)
 * when the key that signed it was dropped.
 */
export async function userCaStandby(auth: RotationAuth): Promise<void> {
  await auth.phase("user", "standby");
  await eventually(
    async () => (await auth.tctl("status")).code === 0,
    10_000,
    "tctl follows the user CA",
  );
}

/**
 * Asserts that what third parties read stays P-256, whatever Ed25519 keys are
 * live: `r`'s trust bundle and `GET /v1/ca/user` list exactly the P-256
 * certificates tctl exports (signing first), and an output certificate
 * (`POST /v1/bot/identity-cert`, asked by `bot` for an Ed25519 key) is
 * signed by the signing P-256 key with that list as its `tls_ca_certs`.
 */
export async function assertListsStayP256(
  auth: RotationAuth,
  bot: RotationBot,
  r: JoinResult,
  what: string,
): Promise<void> {
  const p256 = await userCas(auth, "pem");
  assert(p256.every((pem) => certOf(pem).signatureAlgorithm === "ES256"), what);
  assertEquals(r.trust_bundle!.user.tls_ca_certs, p256, `${what}: trust bundle`);
  const served = await bot.fetch(`${auth.proc.url}/v1/ca/user`);
  assertEquals(CaResponse.parse(await served.json()).tls_ca_certs, p256, `${what}: /v1/ca/user`);
  const key = await generateKeyPair("EdDSA");
  const body = JSON.stringify({
    public_tls_key: await exportSpkiPem(key.publicKey),
    public_ssh_key: await toAuthorizedKey(key.publicKey),
  });
  const res = await bot.fetch(`${auth.proc.url}${IDENTITY_CERT_PATH}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: await signRequest(bot.identity!, {
        method: "POST",
        path: IDENTITY_CERT_PATH,
        body,
      }),
    },
    body,
  });
  const json = await res.json();
  assertEquals(res.status, 200, JSON.stringify(json));
  const out = IdentityCertResponse.parse(json).certificates;
  assertEquals(await issuerOf(certOf(out.tls_cert), p256), p256[0], `${what}: output signer`);
  assertEquals(certOf(out.tls_cert).signatureAlgorithm, "ES256", `${what}: output algorithm`);
  assertEquals(out.tls_ca_certs, p256, `${what}: output tls_ca_certs`);
}
