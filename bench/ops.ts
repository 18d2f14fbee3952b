/**
 * Per-operation costs of the refresh hot path, measured one at a time in
 * this process: the numbers behind "where the time goes" in
 * docs/benchmarks.md. Each is the median of `samples` sequential calls.
 *
 * @module
 */
import { exportSpki, generateKeyPair, sign, verify } from "../src/crypto/keys.ts";
import {
  createSelfSignedCA,
  issueCertificate,
  issueSshCertificate,
  parseCertificate,
} from "../src/pki/mod.ts";
import { openSession, sealSession } from "../src/protocol/session.ts";
import { signRequest } from "../src/protocol/signed_request.ts";
import { botSubject } from "../src/protocol/subject.ts";
import { publicKeyToSshBlob } from "../src/crypto/ssh_wire.ts";
import type { BenchRow, BenchSection } from "./report.ts";
import { fmt, median } from "./stats.ts";

async function medianMs(samples: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 5; i++) await fn(); // warm-up: JIT and lazy imports
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** The per-operation section; publishes nothing. */
export function opCostSection(samples = 200): BenchSection {
  return {
    id: "ops",
    title: "per-operation costs (median, one at a time)",
    async run() {
      const msg = crypto.getRandomValues(new Uint8Array(600));
      const p256 = await generateKeyPair("ES256");
      const ed = await generateKeyPair("EdDSA");
      const p256Sig = await sign(p256.privateKey, msg);
      const edSig = await sign(ed.privateKey, msg);
      const now = Date.now();
      const caSubject = [{ oid: "2.5.4.3", value: "bench" }, { oid: "2.5.4.11", value: "user" }];
      const caDer = await createSelfSignedCA({
        subject: caSubject,
        keyPair: p256,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 86_400_000),
      });
      const issuerName = parseCertificate(caDer).subjectDer;
      const subjectKey = await generateKeyPair("ES256");
      const subjectSpki = await exportSpki(subjectKey.publicKey);
      const issue = (withSpki = false) =>
        issueCertificate({
          issuer: { subject: issuerName, privateKey: p256.privateKey, publicKey: p256.publicKey },
          subject: botSubject({
            botName: "bench",
            botInstanceId: crypto.randomUUID(),
            generation: 7,
            joinToken: "bench-0",
          }),
          publicKey: subjectKey.publicKey,
          ...(withSpki ? { publicKeySpki: subjectSpki } : {}),
          notBefore: new Date(now - 60_000),
          notAfter: new Date(now + 3_600_000),
          extKeyUsage: ["clientAuth"],
        });
      const botDer = await issue();
      const subjectBlob = await publicKeyToSshBlob(subjectKey.publicKey);
      const issueSsh = (withBlob = false) =>
        issueSshCertificate({
          caPrivateKey: ed.privateKey,
          caPublicKey: ed.publicKey,
          publicKey: subjectKey.publicKey,
          ...(withBlob ? { publicKeyBlob: subjectBlob } : {}),
          certType: "user",
          keyId: "bot-bench",
          principals: ["-teleport-nologin-x"],
          validAfter: new Date(now - 60_000),
          validBefore: new Date(now + 3_600_000),
        });
      const sessionKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
        "encrypt",
        "decrypt",
      ]);
      const session = {
        sid: "0".repeat(32),
        exp: Math.floor(now / 1000) + 60,
        pad: "x".repeat(900),
      };
      const blob = await sealSession(sessionKey, session);
      const ops: [string, () => Promise<unknown> | unknown][] = [
        ["P-256 sign", () => sign(p256.privateKey, msg)],
        ["P-256 verify", () => verify(p256.publicKey, p256Sig, msg)],
        ["Ed25519 sign", () => sign(ed.privateKey, msg)],
        ["Ed25519 verify", () => verify(ed.publicKey, edSig, msg)],
        ["SHA-256 of a certificate (WebCrypto)", () => crypto.subtle.digest("SHA-256", botDer)],
        ["parseCertificate (bot cert)", () => parseCertificate(botDer)],
        // WebCrypto itself: exportSpki remembers a key's export after the first.
        [
          "P-256 public key export (SPKI, WebCrypto)",
          () => crypto.subtle.exportKey("spki", subjectKey.publicKey),
        ],
        ["issueCertificate (bot cert, P-256 CA, exports the key)", () => issue()],
        ["issueCertificate (as the join: SPKI given)", () => issue(true)],
        ["issueSshCertificate (Ed25519 CA, exports the key)", () => issueSsh()],
        ["issueSshCertificate (as the join: SSH blob given)", () => issueSsh(true)],
        [
          "signRequest (client JWS, P-256)",
          () =>
            signRequest({ certDer: botDer, privateKey: subjectKey.privateKey }, {
              method: "POST",
              path: "/v1/join/bound-keypair/continue",
              body: "x".repeat(1500),
              chash: "abc",
            }),
        ],
        [
          "seal + open join session",
          async () =>
            openSession(sessionKey, await sealSession(sessionKey, session), new Date(now)),
        ],
        ["open join session", () => openSession(sessionKey, blob, new Date(now))],
      ];
      const rows: BenchRow[] = [];
      for (const [name, fn] of ops) {
        rows.push({ metric: name, value: fmt(await medianMs(samples, fn), 3), unit: "ms" });
      }
      return rows;
    },
  };
}
