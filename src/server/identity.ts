/**
 * Certificates the auth service issues for itself: the long-lived admin
 * identity `tctl` uses (user CA) and the TLS server certificate (host CA).
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import { isLoopbackHost } from "../util/host_port.ts";
import { generateStorableKeyPair } from "../crypto/keys.ts";
import {
  certificateToPem,
  issueCertificate,
  parseCertificate,
  parseIpAddress,
  verifyCertificateSignature,
} from "../pki/mod.ts";
import { formatIdentityFile, parseIdentityFile } from "../protocol/identity_file.ts";
import { ADMIN_ROLE, adminSubject, identityFromSubject } from "../protocol/subject.ts";
import type { CaSet, CertAuthority, ServerContext, TlsCaKey } from "./context.ts";

/** Default validity of the admin identity: it is a long-lived local file, like Teleport's. */
export const ADMIN_IDENTITY_TTL_MS = 365 * 24 * 3600 * 1000;
/** An admin identity closer than this to expiry is re-issued at start. */
export const ADMIN_IDENTITY_RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
/** Default validity of the TLS server certificate (issued afresh at every start). */
export const SERVER_CERT_TTL_MS = 365 * 24 * 3600 * 1000;

/**
 * When a running auth instance replaces the server certificate it issued at
 * `issuedAt` for `ttlMs`: at two thirds of its lifetime, so a renewal that
 * fails (a storage hiccup) has the last third to be tried again.
 *
 * @example
 * ```ts
 * serverCertificateRenewAt(0, 9_000); // 6000
 * ```
 */
export function serverCertificateRenewAt(issuedAt: number, ttlMs = SERVER_CERT_TTL_MS): number {
  return issuedAt + Math.floor(ttlMs * 2 / 3);
}
/** Backdating of issued certificates, so small clock differences do not reject them. */
const BACKDATE_MS = 60_000;

/** A certificate and its private key, both PEM. The key is secret. */
export interface IssuedCertificate {
  /** The certificate, PEM. */
  certPem: string;
  /** PKCS#8 private key, PEM. */
  keyPem: string;
}

function caTls(ca: CertAuthority): TlsCaKey {
  if (!ca.tls) throw new KeyboundError("INTERNAL", `${ca.type} CA has no X.509 key`);
  return ca.tls;
}

async function issueFrom(
  tls: TlsCaKey,
  o: {
    subject: { oid: string; value: string }[];
    notBefore: Date;
    notAfter: Date;
    extKeyUsage: ("clientAuth" | "serverAuth")[];
    dnsNames?: string[];
    ipAddresses?: string[];
  },
): Promise<IssuedCertificate> {
  const key = await generateStorableKeyPair("ES256");
  const der = await issueCertificate({
    issuer: {
      subject: tls.subjectDer,
      privateKey: tls.keyPair.privateKey,
      publicKey: tls.keyPair.publicKey,
    },
    subject: o.subject,
    publicKey: key.publicKey,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    extKeyUsage: o.extKeyUsage,
    dnsNames: o.dnsNames,
    ipAddresses: o.ipAddresses,
    // Startup-time issues (admin identity, server TLS): first use of the CA pair, so check it.
    selfCheck: true,
  });
  return { certPem: certificateToPem(der), keyPem: key.pkcs8Pem };
}

/** Issues the admin identity: CN=admin, O=@admin, clientAuth, P-256 key, from the user CA. */
export function issueAdminIdentity(
  ctx: ServerContext,
  options: { ttlMs?: number } = {},
): Promise<IssuedCertificate> {
  const now = ctx.now().getTime();
  return issueFrom(caTls(ctx.cas.user), {
    subject: adminSubject(),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (options.ttlMs ?? ADMIN_IDENTITY_TTL_MS)),
    extKeyUsage: ["clientAuth"],
  });
}

/**
 * Issues an admin identity and formats it as an identity file (docs/protocol.md §2).
 *
 * @example Issue an admin identity for tctl
 * ```ts ignore
 * import { bootstrapCluster, issueAdminIdentityFile, MemoryBackend, silentLogger } from "@keybound/keybound";
 *
 * const ctx = await bootstrapCluster(new MemoryBackend(), {
 *   clusterName: "example.com",
 *   log: silentLogger,
 *   version: "0.1.0",
 * });
 * const pem = await issueAdminIdentityFile(ctx); // store it 0600: it holds the admin key
 * ```
 */
export async function issueAdminIdentityFile(
  ctx: ServerContext,
  options: { ttlMs?: number } = {},
): Promise<string> {
  const id = await issueAdminIdentity(ctx, options);
  return formatIdentityFile({
    ...id,
    userCaPems: ctx.cas.user.trustedTls.map((k) => k.certPem),
    hostCaPems: ctx.cas.host.trustedTls.map((k) => k.certPem),
  });
}

/**
 * True if `text` is an identity file whose certificate is an `@admin`
 * identity from the user CA key that signs now, trusting exactly the host
 * CAs trusted now, and not within {@linkcode ADMIN_IDENTITY_RENEW_BEFORE_MS}
 * of expiry. Anything unreadable counts as not current: during a rotation
 * the auth service rewrites the file at each phase that changes either
 * (runtime-adapters/deno/auth_main.ts), so tctl keeps working.
 */
export async function isAdminIdentityCurrent(ctx: ServerContext, text: string): Promise<boolean> {
  try {
    const id = await parseIdentityFile(text);
    const cert = parseCertificate(id.certDer);
    const subject = identityFromSubject(cert.subject);
    const now = ctx.now().getTime();
    return typeof subject !== "string" && subject.roles.includes(ADMIN_ROLE) &&
      await verifyCertificateSignature(cert, caTls(ctx.cas.user).keyPair.publicKey) &&
      sameSet(id.hostCaPems, ctx.cas.host.trustedTls.map((k) => k.certPem)) &&
      cert.notBefore.getTime() <= now &&
      cert.notAfter.getTime() - ADMIN_IDENTITY_RENEW_BEFORE_MS > now;
  } catch {
    return false;
  }
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * True if the host CA key the auth service's TLS certificate comes from
 * differs between two CA snapshots, so the certificate must be issued again
 * (at update_servers, and at a rollback from it). Compared by the key's CA
 * certificate, not by object: a snapshot reloaded after any host CA change
 * (init, update_clients, standby) holds new objects for the same keys, and a
 * needless certificate swap resets connections queued on the old listener.
 *
 * @example
 * ```ts ignore
 * import { servingKeyChanged, type ServerContext } from "@keybound/keybound";
 *
 * declare const ctx: ServerContext;
 * const before = ctx.cas;
 * // … the CA watcher reloads ctx.cas …
 * if (servingKeyChanged(before, ctx.cas)) console.log("issue a new server certificate");
 * ```
 */
export function servingKeyChanged(before: CaSet, after: CaSet): boolean {
  const serving = (cas: CaSet) => (cas.host.serverTls ?? caTls(cas.host)).certPem;
  return serving(before) !== serving(after);
}

/**
 * Issues a TLS server certificate for the given names and addresses from the
 * host CA key the rotation phase says serves (the previous key until
 * `update_servers`).
 */
export function issueServerCertificate(
  ctx: ServerContext,
  options: { dnsNames: string[]; ipAddresses: string[]; ttlMs?: number },
): Promise<IssuedCertificate> {
  const now = ctx.now().getTime();
  if (options.dnsNames.length + options.ipAddresses.length === 0) {
    throw new KeyboundError("BAD_PARAMETER", "a server certificate needs at least one name");
  }
  const tls = ctx.cas.host.serverTls ?? caTls(ctx.cas.host);
  return issueFrom(tls, {
    subject: [
      { oid: "2.5.4.3", value: ctx.clusterName },
      { oid: "2.5.4.10", value: "@auth" },
    ],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (options.ttlMs ?? SERVER_CERT_TTL_MS)),
    extKeyUsage: ["serverAuth"],
    dnsNames: options.dnsNames,
    ipAddresses: options.ipAddresses,
  });
}

/** Input of {@linkcode serverCertificateNames}. */
export interface ServerAddresses {
  /** Listen host (name or IP; `0.0.0.0` / `::` mean every interface). */
  listenHost: string;
  /** Public addresses' hosts (`--public-addr`, port removed). */
  publicHosts: string[];
  /** The machine's host name, used when listening on every interface. */
  hostname?: string;
}

const LOOPBACK_NAMES = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] };

/** True for an IP literal (v4 or v6, without brackets). */
export function isIpAddress(host: string): boolean {
  try {
    parseIpAddress(host);
    return true;
  } catch {
    return false;
  }
}

function isUnspecified(host: string): boolean {
  return isIpAddress(host) && parseIpAddress(host).every((v) => v === 0);
}

/**
 * Subject alternative names of the server certificate: the listen host, the
 * public hosts, loopback names when the server is reachable on loopback, and
 * the host name when it listens on every interface.
 */
export function serverCertificateNames(a: ServerAddresses): {
  dnsNames: string[];
  ipAddresses: string[];
} {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (h: string) => (isIpAddress(h) ? ips : dns).add(h.toLowerCase());
  const hosts = [a.listenHost, ...a.publicHosts];
  for (const h of hosts) if (!isUnspecified(h)) add(h);
  const wildcard = isUnspecified(a.listenHost);
  if (wildcard || isLoopbackHost(a.listenHost)) {
    LOOPBACK_NAMES.dnsNames.forEach(add);
    LOOPBACK_NAMES.ipAddresses.forEach(add);
  }
  if (wildcard && a.hostname) add(a.hostname);
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}
