/**
 * Issuing what bot outputs other than `identity` need (docs/protocol.md §8):
 * OpenSSH host certificates, X.509 SVIDs and JWT-SVIDs. Callers have
 * already verified the bot's signed request; this module checks what the
 * bot's roles allow, issues, and records a `cert.create` audit event.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { SignJWT } from "jose";
import { BadParameterError, KeyboundError, NotFoundError } from "../../errors.ts";
import { algOf, importSpkiPem } from "../../crypto/keys.ts";
import { randomHex } from "../../crypto/random.ts";
import { parseAuthorizedKey } from "../../crypto/ssh_wire.ts";
import { certificateToPem, issueCertificate, issueSshCertificate } from "../../pki/mod.ts";
import {
  renderSpiffeTemplate,
  spiffeId,
  trustDomainOf,
} from "../../resources/spiffe_id_template.ts";
import { emitAudit } from "../audit.ts";
import type { ServerContext } from "../context.ts";
import type { VerifiedIdentity } from "../hono_env.ts";
import { getResource } from "../resources/mod.ts";
import { assertMayCreateHostCert, assertMayUseWorkloadIdentity, botRoles } from "./authz.ts";
import { refreshCas } from "../rotation/cache.ts";
import { spiffeCa } from "./spiffe_ca.ts";

/** Backdating of `notBefore` / `valid after`, so small clock differences do not reject a fresh credential. */
export const BACKDATE_MS = 60_000;
/** Default lifetime when a request names none. */
export const DEFAULT_TTL_S = 3600;
/** Longest SSH host certificate and JWT-SVID: Teleport's renewable-certificate cap (24 h). */
export const MAX_SHORT_TTL_S = 24 * 3600;
/** Longest X.509 SVID (14 days): tbot exempts X.509 SVIDs from the 24 h cap. */
export const MAX_X509_SVID_TTL_S = 14 * 24 * 3600;

/** A bot identity as the signed-request middleware verified it. */
export type VerifiedBot = VerifiedIdentity & { botName: string; botInstanceId: string };

/** The lifetime to issue: the request's, clamped (not refused) to `max`, as Teleport clamps. */
function lifetime(ctx: ServerContext, ttlSeconds: number | undefined, max: number) {
  const now = ctx.now();
  const ttl = Math.min(ttlSeconds ?? DEFAULT_TTL_S, max);
  return {
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + ttl * 1000),
  };
}

/** The SSH key of a CA that signs now, after a fresh read of the CA state (no stale signer). */
async function signingSsh(ctx: ServerContext, which: "user" | "host") {
  await refreshCas(ctx, 0);
  const ssh = ctx.cas[which].ssh;
  if (!ssh) throw new KeyboundError("INTERNAL", `${which} CA has no SSH key`);
  return ssh;
}

async function audit(
  ctx: ServerContext,
  id: VerifiedBot,
  fields: { cert_type: string; identity: string; expires: Date; remoteAddr?: string },
): Promise<void> {
  await emitAudit(ctx, {
    type: "cert.create",
    status: { success: true },
    ...(fields.remoteAddr ? { connection: { remote_addr: fields.remoteAddr } } : {}),
    cert_type: fields.cert_type,
    identity: fields.identity,
    bot_name: id.botName,
    bot_instance_id: id.botInstanceId,
    expires: fields.expires.toISOString(),
  });
}

/** Input of {@linkcode issueSshHostCert}. */
export interface SshHostCertRequest {
  /** Host public key, authorized_keys text. */
  publicKey: string;
  /** Host names and addresses the certificate is valid for (validated by the caller's schema). */
  principals: string[];
  /** Requested lifetime, seconds. */
  ttlSeconds?: number;
  /** Peer address, for the audit event. */
  remoteAddr?: string;
}

/** Issues an OpenSSH host certificate from the host CA; returns it and the user CA keys. */
export async function issueSshHostCert(
  ctx: ServerContext,
  id: VerifiedBot,
  req: SshHostCertRequest,
): Promise<{ sshCert: string; userCaKeys: string[]; expires: Date }> {
  assertMayCreateHostCert(await botRoles(ctx, id.botName), id.botName);
  let key: CryptoKey;
  try {
    key = (await parseAuthorizedKey(req.publicKey)).key;
  } catch (cause) {
    throw new BadParameterError(
      "public_key: must be an ssh-ed25519 or ecdsa-sha2-nistp256 authorized_keys line",
      { cause, details: { path: "public_key" } },
    );
  }
  const host = await signingSsh(ctx, "host");
  const { notBefore, notAfter } = lifetime(ctx, req.ttlSeconds, MAX_SHORT_TTL_S);
  const sshCert = await issueSshCertificate({
    caPrivateKey: host.keyPair.privateKey,
    caPublicKey: host.keyPair.publicKey,
    publicKey: key,
    certType: "host",
    // sshd and ssh -v print the key ID; naming the issuing bot makes a host certificate traceable.
    keyId: `${req.principals[0]} (${botUserName(id.botName)})`,
    principals: req.principals,
    validAfter: notBefore,
    validBefore: notAfter,
  });
  await audit(ctx, id, {
    cert_type: "ssh_host",
    identity: req.principals.join(","),
    expires: notAfter,
    remoteAddr: req.remoteAddr,
  });
  // Every trusted user CA key, so the host accepts users through a user CA rotation.
  const userCaKeys = ctx.cas.user.trustedSsh.map((k) => k.publicKey);
  return { sshCert, userCaKeys, expires: notAfter };
}

/** Resolves a `workload_identity` the bot may use and renders its SPIFFE ID. */
async function resolveSpiffeId(ctx: ServerContext, id: VerifiedBot, name: string): Promise<string> {
  const stored = await getResource(ctx, "workload_identity", name);
  if (!stored) {
    throw new NotFoundError(`workload_identity "${name}" not found`, {
      details: { path: "selector.name" },
    });
  }
  const wi = stored.resource;
  assertMayUseWorkloadIdentity(
    await botRoles(ctx, id.botName),
    { name, labels: wi.metadata.labels ?? {} },
    id.botName,
  );
  const rendered = renderSpiffeTemplate(wi.spec.spiffe.id, {
    "user.name": botUserName(id.botName),
    "user.bot_name": id.botName,
    "user.bot_instance_id": id.botInstanceId,
  });
  if ("error" in rendered) {
    throw new BadParameterError(`workload_identity "${name}" spec.spiffe.id: ${rendered.error}`);
  }
  return spiffeId(trustDomainOf(ctx.clusterName), rendered.path);
}

/** Input of {@linkcode issueX509Svid}. */
export interface X509SvidRequest {
  /** `workload_identity` name. */
  name: string;
  /** SVID public key, PEM SPKI (Ed25519 or P-256). */
  publicKeyPem: string;
  /** Requested lifetime, seconds. */
  ttlSeconds?: number;
  /** Peer address, for the audit event. */
  remoteAddr?: string;
}

/**
 * Issues an X.509 SVID (SPIFFE X509-SVID spec): empty subject, exactly one
 * URI SAN (critical, as RFC 5280 requires with an empty subject), CA:FALSE,
 * key usage digitalSignature only (neither key type does key encipherment),
 * EKU serverAuth and clientAuth so it works on both ends of mTLS.
 */
export async function issueX509Svid(
  ctx: ServerContext,
  id: VerifiedBot,
  req: X509SvidRequest,
): Promise<{ svid: string; bundle: string[]; spiffeId: string; expires: Date }> {
  const spiffe = await resolveSpiffeId(ctx, id, req.name);
  let publicKey: CryptoKey;
  try {
    publicKey = await importSpkiPem(req.publicKeyPem);
  } catch (cause) {
    throw new BadParameterError("public_key: must be a PEM Ed25519 or ECDSA P-256 public key", {
      cause,
      details: { path: "public_key" },
    });
  }
  const ca = await spiffeCa(ctx);
  const { notBefore, notAfter } = lifetime(ctx, req.ttlSeconds, MAX_X509_SVID_TTL_S);
  const der = await issueCertificate({
    issuer: {
      subject: ca.subjectDer,
      privateKey: ca.keyPair.privateKey,
      publicKey: ca.keyPair.publicKey,
    },
    subject: [],
    publicKey,
    notBefore,
    notAfter,
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["serverAuth", "clientAuth"],
    uris: [spiffe],
  });
  await audit(ctx, id, {
    cert_type: "x509_svid",
    identity: spiffe,
    expires: notAfter,
    remoteAddr: req.remoteAddr,
  });
  // Every trusted SPIFFE CA, signing key first: during a rotation peers hold SVIDs of either key.
  const bundle = ctx.cas.spiffe.trustedTls.map((k) => k.certPem);
  return { svid: certificateToPem(der), bundle, spiffeId: spiffe, expires: notAfter };
}

/** Input of {@linkcode issueJwtSvid}. */
export interface JwtSvidRequest {
  /** `workload_identity` name. */
  name: string;
  /** `aud` values, at least one. */
  audiences: string[];
  /** Requested lifetime, seconds. */
  ttlSeconds?: number;
  /** Peer address, for the audit event. */
  remoteAddr?: string;
}

/** `iss` of JWT-SVIDs: the cluster as an HTTPS URL, stable across auth processes and addresses. */
export function jwtIssuer(ctx: ServerContext): string {
  return `https://${ctx.clusterName}`;
}

/**
 * Issues a JWT-SVID (SPIFFE JWT-SVID spec) signed by the cluster's JWT CA's
 * active key: header `alg`, `typ: JWT`, `kid`; claims `iss`, `sub` (the
 * SPIFFE ID), `aud` (always an array), `iat`, `exp`, `jti`.
 */
export async function issueJwtSvid(
  ctx: ServerContext,
  id: VerifiedBot,
  req: JwtSvidRequest,
): Promise<{ jwt: string; spiffeId: string; expires: Date }> {
  const spiffe = await resolveSpiffeId(ctx, id, req.name);
  await refreshCas(ctx, 0);
  const active = ctx.cas.jwt.jwt?.[0];
  if (!active) throw new KeyboundError("INTERNAL", "jwt CA has no signing key");
  const now = ctx.now();
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + Math.min(req.ttlSeconds ?? DEFAULT_TTL_S, MAX_SHORT_TTL_S);
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: algOf(active.keyPair.privateKey), typ: "JWT", kid: active.kid })
    .setIssuer(jwtIssuer(ctx))
    .setSubject(spiffe)
    .setAudience(req.audiences)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(randomHex(16))
    .sign(active.keyPair.privateKey);
  const expires = new Date(exp * 1000);
  await audit(ctx, id, {
    cert_type: "jwt_svid",
    identity: spiffe,
    expires,
    remoteAddr: req.remoteAddr,
  });
  return { jwt, spiffeId: spiffe, expires };
}
