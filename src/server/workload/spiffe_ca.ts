/**
 * The cluster's SPIFFE X.509 CA, which signs X.509 SVIDs and nothing else.
 *
 * It is separate from the user CA on purpose: the auth service accepts any
 * non-CA certificate of the user CA as a client identity (signed requests),
 * and an SVID handed to a workload must never be usable that way. Workloads
 * in turn trust only this CA, not certificates of the cluster's users.
 *
 * Clusters created before workload identity existed have no such CA, so it
 * is created on first use with the same atomic "create if absent" commit
 * bootstrap uses; concurrent auth processes agree on one CA.
 *
 * @module
 */
import { z } from "zod";
import { KeyboundError } from "../../errors.ts";
import { generateStorableKeyPair, importPkcs8, type KeyPair } from "../../crypto/keys.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  NAME_OIDS,
  parseCertificate,
  verifyCertificateSignature,
} from "../../pki/mod.ts";
import { fromBase64, fromPem, toBase64 } from "../../util/encoding.ts";
import { CA_VALIDITY_MS } from "../bootstrap.ts";
import type { ServerContext } from "../context.ts";
import { SPIFFE_CA_KEY } from "../keys.ts";

/** OU of the SPIFFE CA's subject, next to the user and host CAs' `user` / `host`. */
export const SPIFFE_CA_OU = "spiffe";

/** The loaded SPIFFE CA. */
export interface SpiffeCa {
  /** Self-signed CA certificate, DER. */
  certDer: Uint8Array;
  /** The same, PEM. */
  certPem: string;
  /** The CA certificate's subject Name DER (the issuer of every SVID). */
  subjectDer: Uint8Array;
  /** Signing key (ECDSA P-256, non-extractable private half). */
  keyPair: KeyPair;
}

const StoredSpiffeCa = z.object({
  type: z.literal("spiffe"),
  tls: z.object({ cert_pem: z.string(), key_pkcs8: z.string().min(1) }),
});

const loaded = new WeakMap<ServerContext, Promise<SpiffeCa>>();

function corrupt(cause?: unknown): KeyboundError {
  return new KeyboundError(
    "STORAGE_ERROR",
    "stored spiffe certificate authority is malformed",
    cause ? { cause } : undefined,
  );
}

/** P-256 rather than Ed25519: SVIDs go to arbitrary TLS stacks, and several refuse Ed25519. */
async function newStoredCa(clusterName: string, now: Date) {
  const key = await generateStorableKeyPair("ES256");
  const certDer = await createSelfSignedCA({
    subject: [
      { oid: NAME_OIDS.commonName, value: clusterName },
      { oid: NAME_OIDS.organization, value: clusterName },
      { oid: NAME_OIDS.organizationalUnit, value: SPIFFE_CA_OU },
    ],
    keyPair: key,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
  });
  return {
    type: "spiffe",
    tls: {
      cert_pem: certificateToPem(certDer),
      key_pkcs8: toBase64(fromPem("PRIVATE KEY", key.pkcs8Pem)),
    },
  };
}

async function loadStored(value: unknown): Promise<SpiffeCa> {
  const r = StoredSpiffeCa.safeParse(value);
  if (!r.success) throw corrupt(r.error);
  let keyPair: KeyPair;
  try {
    keyPair = await importPkcs8(fromBase64(r.data.tls.key_pkcs8));
  } catch (cause) {
    throw corrupt(cause);
  }
  const [certDer] = certificatesFromPem(r.data.tls.cert_pem);
  const cert = parseCertificate(certDer);
  if (!(await verifyCertificateSignature(cert, keyPair.publicKey))) throw corrupt();
  return { certDer, certPem: certificateToPem(certDer), subjectDer: cert.subjectDer, keyPair };
}

async function loadOrCreate(ctx: ServerContext): Promise<SpiffeCa> {
  let entry = await ctx.backend.get(SPIFFE_CA_KEY);
  if (entry === null) {
    const value = await newStoredCa(ctx.clusterName, ctx.now());
    const r = await ctx.backend.commit({
      checks: [{ key: SPIFFE_CA_KEY, version: null }],
      mutations: [{ type: "set", key: SPIFFE_CA_KEY, value }],
    });
    if (r.ok) ctx.log.info("created spiffe certificate authority", { cluster: ctx.clusterName });
    entry = await ctx.backend.get(SPIFFE_CA_KEY);
  }
  return await loadStored(entry?.value);
}

/**
 * The SPIFFE CA of `ctx`'s cluster, created if absent. Loaded once per
 * context; a failed load is not cached, so the next call retries.
 */
export function spiffeCa(ctx: ServerContext): Promise<SpiffeCa> {
  let p = loaded.get(ctx);
  if (!p) {
    p = loadOrCreate(ctx);
    loaded.set(ctx, p);
    p.catch(() => loaded.delete(ctx));
  }
  return p;
}
