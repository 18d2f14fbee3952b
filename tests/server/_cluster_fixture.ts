/**
 * Test fixture: a bootstrapped cluster on a MemoryBackend with a settable
 * clock, plus helpers to issue client certificates from its user CA.
 *
 * @module
 */
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { issueCertificate, parseCertificate } from "../../src/pki/mod.ts";
import type { NameAttribute } from "../../src/pki/x509.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import type { RequestSigner } from "../../src/protocol/signed_request.ts";
import { botSubject } from "../../src/protocol/subject.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import type { CertAuthority, ServerContext, TlsCaKey } from "../../src/server/context.ts";
import { issueAdminIdentityFile } from "../../src/server/identity.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import { silentLogger } from "../../src/util/log.ts";

/** A cluster whose clock tests can move. */
export interface TestCluster {
  /** The server context. */
  ctx: ServerContext;
  /** Sets the cluster clock. */
  setNow(d: Date): void;
}

/** Bootstraps a fresh in-memory cluster. */
export async function newCluster(clusterName = "test.example.com"): Promise<TestCluster> {
  let now = new Date();
  const backend = new MemoryBackend(() => now.getTime());
  const ctx = await bootstrapCluster(backend, {
    clusterName,
    now: () => now,
    log: silentLogger,
    version: "0.0.0-test",
  });
  return { ctx, setNow: (d) => (now = d) };
}

/** The admin identity of `ctx`, as tctl loads it. */
export async function adminSigner(ctx: ServerContext): Promise<RequestSigner> {
  const id = await parseIdentityFile(await issueAdminIdentityFile(ctx));
  return { certDer: id.certDer, privateKey: id.privateKey };
}

/**
 * Issues a client certificate with `subject` from `ca` (default: the cluster's
 * user CA), signed by its P-256 key or by `issuer`.
 */
export async function clientSigner(
  ctx: ServerContext,
  subject: NameAttribute[],
  options: { ca?: CertAuthority; issuer?: TlsCaKey; alg?: "EdDSA" | "ES256"; notAfter?: Date } = {},
): Promise<RequestSigner> {
  const tls = options.issuer ?? (options.ca ?? ctx.cas.user).tls!;
  const key = await generateKeyPair(options.alg ?? "ES256");
  const now = ctx.now().getTime();
  const certDer = await issueCertificate({
    issuer: {
      subject: parseCertificate(tls.certDer).subjectDer,
      privateKey: tls.keyPair.privateKey,
      publicKey: tls.keyPair.publicKey,
    },
    subject,
    publicKey: key.publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + 3600_000),
    extKeyUsage: ["clientAuth"],
  });
  return { certDer, privateKey: key.privateKey };
}

/** A bot certificate signer for bot `name`. */
export function botSigner(
  ctx: ServerContext,
  name = "example",
  options: {
    instance?: string;
    generation?: number;
    alg?: "EdDSA" | "ES256";
    issuer?: TlsCaKey;
  } = {},
): Promise<RequestSigner> {
  return clientSigner(
    ctx,
    botSubject({
      botName: name,
      botInstanceId: options.instance ?? "6f1c2f0e-1111-4222-8333-444455556666",
      generation: options.generation ?? 3,
      joinToken: `${name}-token`,
    }),
    { alg: options.alg, issuer: options.issuer },
  );
}
