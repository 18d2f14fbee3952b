/**
 * The core conformance cases, in the spirit of jose's cross-runtime suite:
 * key generation and import, JWS, X.509 and OpenSSH certificate building,
 * sealed keys, and a full join (first join and refresh) of the real client
 * against the real server application, in process. The same module runs
 * under Deno and, bundled, inside workerd; it uses web-standard APIs only.
 *
 * @module
 */
import { CompactSign, compactVerify, jwtVerify, SignJWT } from "jose";
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { parseKek, SEALED_MAGIC, SealedStorage } from "../../src/agent/sealed_keys.ts";
import {
  algOf,
  exportSpki,
  generateKeyPair,
  generateStorableKeyPair,
  importPkcs8Pem,
  importSpki,
  type KeyAlgorithm,
  publicKeysEqual,
  sign,
  verify,
} from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import {
  createSelfSignedCA,
  issueCertificate,
  issueSshCertificate,
  NAME_OIDS,
  parseCertificate,
  parseSshCertificate,
  verifyCertificateSignature,
  verifySshCertificate,
} from "../../src/pki/mod.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { Bot, Token } from "../../src/resources/schemas.ts";
import { createApp } from "../../src/server/app.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { issueAdminIdentityFile } from "../../src/server/identity.ts";
import { AdminApiClient } from "../../src/cli/api_client.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { fromPem, fromUtf8, utf8 } from "../../src/util/encoding.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertStrictEquals } from "../_assert_core.ts";
import type { NamedCase } from "../storage/_results.ts";
import type { Capabilities } from "./env.ts";
import { MemoryKeyStore } from "../_key_store.ts";

/** A core case; the subject is unused (each case builds what it needs). */
export type CoreCase = NamedCase<Capabilities, null>;

const ALGS: KeyAlgorithm[] = ["EdDSA", "ES256"];

async function newCa(alg: KeyAlgorithm) {
  const keyPair = await generateKeyPair(alg);
  const now = Date.now();
  const der = await createSelfSignedCA({
    subject: [{ oid: NAME_OIDS.commonName, value: `conformance ${alg} CA` }],
    keyPair,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
  });
  return { keyPair, der };
}

/**
 * Joins token `tokenName` with its registration secret, then refreshes with
 * the issued identity; asserts the same instance at generations 1 and 2.
 * The conformance join case runs it in process; the browser suite also runs
 * it over real `fetch` against a loopback auth service.
 */
export async function joinThenRefresh(
  opts: { baseUrl: string; fetch?: typeof fetch; tokenName: string; secret: string },
): Promise<void> {
  const keyStore = new MemoryKeyStore();
  const subjectKey = await generateKeyPair("ES256");
  const params = {
    baseUrl: opts.baseUrl,
    fetch: opts.fetch,
    tokenName: opts.tokenName,
    subjectKey,
    ttlSeconds: 600,
    keyStore,
  };
  const first = await joinBoundKeypair({ ...params, initialJoinSecret: opts.secret });
  assertStrictEquals(first.generation, 1);
  const second = await joinBoundKeypair({
    ...params,
    previousJoinState: first.bound_keypair.join_state,
    identity: {
      certDer: fromPem("CERTIFICATE", first.certificates.tls_cert),
      privateKey: subjectKey.privateKey,
    },
  });
  assertStrictEquals(second.bot_instance_id, first.bot_instance_id);
  assertStrictEquals(second.generation, 2);
}

/** Every core case. */
export const CORE_CASES: readonly CoreCase[] = [
  {
    name: "key generation: non-extractable keys sign and verify (Ed25519, P-256)",
    async run() {
      for (const alg of ALGS) {
        const kp = await generateKeyPair(alg);
        assertStrictEquals(kp.privateKey.extractable, false, `${alg} private key extractable`);
        assertStrictEquals(algOf(kp.privateKey), alg);
        const sig = await sign(kp.privateKey, utf8("message"));
        assert(
          await verify(kp.publicKey, sig, utf8("message")),
          `${alg} signature does not verify`,
        );
        assert(
          !(await verify(kp.publicKey, sig, utf8("other"))),
          `${alg} verifies a wrong message`,
        );
      }
    },
  },
  {
    name: "key import: PKCS#8 and SPKI of both algorithms come back as the right algorithm",
    async run() {
      for (const alg of ALGS) {
        const stored = await generateStorableKeyPair(alg);
        const imported = await importPkcs8Pem(stored.pkcs8Pem);
        assertStrictEquals(imported.alg, alg, `PKCS#8 ${alg} imported as ${imported.alg}`);
        assertStrictEquals(imported.privateKey.extractable, false);
        assert(
          await publicKeysEqual(imported.publicKey, stored.publicKey),
          `${alg} public half differs`,
        );
        const spki = await importSpki(await exportSpki(stored.publicKey));
        assertStrictEquals(algOf(spki), alg, `SPKI ${alg} imported as ${algOf(spki)}`);
      }
    },
  },
  {
    name: "Ed25519 import refuses a P-256 PKCS#8 key",
    requires: "ed25519ImportChecksKeyType",
    async run() {
      const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
        "sign",
        "verify",
      ]) as CryptoKeyPair;
      const der = await crypto.subtle.exportKey("pkcs8", ec.privateKey);
      let imported = true;
      try {
        await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
      } catch {
        imported = false;
      }
      assert(!imported, "an EC key was accepted as Ed25519");
    },
  },
  {
    name: "structuredClone keeps a working CryptoKey",
    requires: "cloneCryptoKey",
    async run() {
      const kp = await generateKeyPair("EdDSA");
      const copy = structuredClone(kp.privateKey);
      assert(
        await verify(kp.publicKey, await sign(copy, utf8("x")), utf8("x")),
        "clone cannot sign",
      );
    },
  },
  {
    name: "JWS: compact sign/verify and JWTs with jose (EdDSA, ES256)",
    async run() {
      for (const alg of ALGS) {
        const kp = await generateKeyPair(alg);
        const jws = await new CompactSign(utf8("payload")).setProtectedHeader({ alg })
          .sign(kp.privateKey);
        assertStrictEquals(fromUtf8((await compactVerify(jws, kp.publicKey)).payload), "payload");
        const jwt = await new SignJWT({ sub: "bot" }).setProtectedHeader({ alg })
          .setAudience("aud").setExpirationTime("5m").sign(kp.privateKey);
        assertStrictEquals(
          (await jwtVerify(jwt, kp.publicKey, { audience: "aud" })).payload.sub,
          "bot",
        );
      }
    },
  },
  {
    name: "X.509: a CA issues a leaf that parses and verifies (both algorithms)",
    async run() {
      for (const alg of ALGS) {
        const ca = await newCa(alg);
        const leaf = await generateKeyPair("ES256");
        const now = Date.now();
        const der = await issueCertificate({
          issuer: {
            subject: parseCertificate(ca.der).subjectDer,
            privateKey: ca.keyPair.privateKey,
            publicKey: ca.keyPair.publicKey,
          },
          subject: [{ oid: NAME_OIDS.commonName, value: "leaf" }],
          publicKey: leaf.publicKey,
          notBefore: new Date(now - 60_000),
          notAfter: new Date(now + 600_000),
          extKeyUsage: ["clientAuth"],
          dnsNames: ["bot.example.com"],
        });
        const cert = parseCertificate(der);
        assert(!cert.isCA, "leaf marked as CA");
        assert(
          await verifyCertificateSignature(cert, ca.keyPair.publicKey),
          `${alg} leaf does not verify`,
        );
        const other = await generateKeyPair(alg);
        assert(
          !(await verifyCertificateSignature(cert, other.publicKey)),
          "verifies under a foreign key",
        );
      }
    },
  },
  {
    name: "OpenSSH: a user certificate round-trips and verifies",
    async run() {
      const ca = await generateKeyPair("EdDSA");
      const user = await generateKeyPair("ES256");
      const now = Date.now();
      const line = await issueSshCertificate({
        caPrivateKey: ca.privateKey,
        caPublicKey: ca.publicKey,
        publicKey: user.publicKey,
        certType: "user",
        keyId: "bot-conformance",
        principals: ["alice"],
        validAfter: new Date(now - 60_000),
        validBefore: new Date(now + 600_000),
      });
      const parsed = await parseSshCertificate(line);
      assertStrictEquals(JSON.stringify(parsed.principals), '["alice"]');
      assert(await verifySshCertificate(parsed), "SSH certificate does not verify");
      assert(line.startsWith("ecdsa-sha2-nistp256-cert-v01@openssh.com "), line.slice(0, 40));
      assert(
        (await toAuthorizedKey(user.publicKey)).startsWith("ecdsa-sha2-nistp256 "),
        "key type",
      );
    },
  },
  {
    name: "sealed keys: AES-GCM sealing round-trips and binds the file name",
    async run() {
      const kek = await parseKek("2a".repeat(32), "conformance KEK");
      const inner = new MemoryStorage();
      const sealed = new SealedStorage(inner, { kek, context: "token:c", log: silentLogger });
      const pem = (await generateStorableKeyPair("EdDSA")).pkcs8Pem;
      await sealed.write("id_bkp", pem);
      assert(fromUtf8((await inner.read("id_bkp"))!).startsWith(SEALED_MAGIC), "not sealed");
      assertStrictEquals(fromUtf8((await sealed.read("id_bkp"))!), pem);
      await inner.write("key", (await inner.read("id_bkp"))!);
      let refused = false;
      await sealed.read("key").catch(() => (refused = true));
      assert(refused, "a sealed file opened under another name");
    },
  },
  {
    name: "join: the real client joins the real server in process, then refreshes",
    async run() {
      const ctx = await bootstrapCluster(new MemoryBackend(), {
        clusterName: "conformance.example",
        log: silentLogger,
        version: "0.0.0-conformance",
      });
      const app = createApp(ctx);
      const inProcess =
        ((input: string | URL | Request, init?: RequestInit) =>
          Promise.resolve(app.fetch(new Request(input, init)))) as typeof fetch;
      const baseUrl = "http://auth.conformance";
      const admin = await parseIdentityFile(await issueAdminIdentityFile(ctx));
      const api = new AdminApiClient({
        baseUrl,
        signer: { certDer: admin.certDer, privateKey: admin.privateKey },
        fetch: inProcess,
      });
      await api.put(
        Bot.parse({ kind: "bot", version: "v1", metadata: { name: "c" }, spec: {} }),
        "create",
      );
      const { item } = await api.put(
        Token.parse({
          kind: "token",
          version: "v2",
          metadata: { name: "c" },
          spec: { roles: ["Bot"], bot_name: "c", join_method: "bound_keypair", bound_keypair: {} },
        }),
        "create",
      );
      const secret = (item as Token).status?.bound_keypair?.registration_secret;
      assert(secret, "no registration secret");
      await joinThenRefresh({ baseUrl, fetch: inProcess, tokenName: "c", secret });
    },
  },
];
