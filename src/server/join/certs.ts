/**
 * Bot credentials issued by a successful join (docs/protocol.md §4.5): an
 * X.509 client certificate and an OpenSSH user certificate from the user CA,
 * both for the client's subject key.
 *
 * @module
 */
import { KeyboundError, NotFoundError } from "../../errors.ts";
import { algOf } from "../../crypto/keys.ts";
import { randomUuid } from "../../crypto/random.ts";
import {
  certificateToPem,
  issueCertificate,
  issueSshCertificate,
  randomSerial,
} from "../../pki/mod.ts";
import { botSubject, botUserName, type NameAttribute } from "../../protocol/subject.ts";
import type { Bot } from "../../resources/schemas.ts";
import { parseDuration } from "../../util/duration.ts";
import { toHex } from "../../util/encoding.ts";
import type { CaKeys, TrustBundle } from "../../protocol/messages.ts";
import type { CertAuthority, ServerContext, TlsCaKey } from "../context.ts";
import { warnNamesOverBounds } from "../name_bounds.ts";
import { getResource } from "../resources/mod.ts";
import { rememberIssuedCertificate, userCaKeyMaySign } from "../verified_certs.ts";

/** Lifetime when the client asks for none. */
export const DEFAULT_CERT_TTL_SECONDS = 3600;
/** A bot's `max_session_ttl` when it sets none. */
export const DEFAULT_MAX_SESSION_TTL_SECONDS = 12 * 3600;
/** Upper bound of any bot certificate's lifetime, whatever the bot says. */
export const MAX_SESSION_TTL_CAP_SECONDS = 168 * 3600;
/** Certificates start this long before issue, so small clock skew does not reject them. */
export const CERT_BACKDATE_MS = 60_000;

/** Reads a bot; null if it does not exist. */
export async function findBot(ctx: ServerContext, botName: string): Promise<Bot | null> {
  return (await getResource(ctx, "bot", botName))?.resource ?? null;
}

/** The bot a join issues for; `NOT_FOUND` if the token names a bot that does not exist. */
export function requireBot(bot: Bot | null, botName: string): Bot {
  if (!bot) throw new NotFoundError(`bot "${botName}" named by the join token does not exist`);
  return bot;
}

/** The certificate lifetime: requested (or default), capped by the bot's `max_session_ttl`. */
export function certificateTtlSeconds(bot: Bot, requested: number | undefined): number {
  const max = bot.spec.max_session_ttl
    ? Math.floor(parseDuration(bot.spec.max_session_ttl) / 1000)
    : DEFAULT_MAX_SESSION_TTL_SECONDS;
  const cap = Math.min(
    max > 0 ? max : DEFAULT_MAX_SESSION_TTL_SECONDS,
    MAX_SESSION_TTL_CAP_SECONDS,
  );
  return Math.min(requested ?? DEFAULT_CERT_TTL_SECONDS, cap);
}

/**
 * SSH principals: the `allow.logins` of the bot's roles and its `logins`
 * trait, minus every role's `deny.logins`. Roles that do not exist are
 * skipped with a warning; template entries (`{{...}}`) are skipped because
 * the trait values they would expand to are added directly.
 */
export async function botLogins(ctx: ServerContext, bot: Bot): Promise<string[]> {
  const roles = await Promise.all(bot.spec.roles.map(async (name) => {
    const stored = await getResource(ctx, "role", name);
    if (!stored) {
      ctx.log.warn("bot role does not exist; ignoring it", { bot: bot.metadata.name, role: name });
    }
    return stored?.resource;
  }));
  const allow = new Set<string>();
  const deny = new Set<string>();
  for (const role of roles) {
    for (const l of role?.spec.allow?.logins ?? []) allow.add(l);
    for (const l of role?.spec.deny?.logins ?? []) deny.add(l);
  }
  for (const t of bot.spec.traits) {
    if (t.name === "logins") t.values.forEach((v) => allow.add(v));
  }
  return [...allow].filter((l) => !l.includes("{{") && !deny.has(l));
}

/** Inputs of {@linkcode issueBotCertificates}. */
export interface BotCertificateRequest {
  /** The bot. */
  bot: Bot;
  /** Instance id the certificate names. */
  instanceId: string;
  /** Generation the certificate carries. */
  generation: number;
  /** Token the bot joined with. */
  tokenName: string;
  /** Subject key of the X.509 certificate. */
  tlsPublicKey: CryptoKey;
  /** Its SubjectPublicKeyInfo DER, canonical (saves exporting the key). */
  tlsPublicKeySpki?: Uint8Array;
  /** Subject key of the SSH certificate. */
  sshPublicKey: CryptoKey;
  /** Its SSH public-key blob (saves exporting the key). */
  sshPublicKeyBlob?: Uint8Array;
  /** Lifetime, already capped. */
  ttlSeconds: number;
}

/** Issued certificates in wire form (docs/protocol.md §4.5 `certificates`) plus their expiry. */
export interface IssuedBotCertificates {
  /** X.509 client certificate, PEM. */
  tls_cert: string;
  /**
   * User CA certificates, PEM: every trusted key of the signing key's
   * algorithm, the signing key first.
   */
  tls_ca_certs: string[];
  /** OpenSSH user certificate. */
  ssh_cert: string;
  /** User CA SSH keys, authorized_keys text. */
  ssh_ca_keys: string[];
  /** End of validity of both certificates. */
  expires: Date;
}

/** Every trusted key of an X.509 + SSH CA, the signing key first (docs/protocol.md §10). */
export function caKeysOf(ca: CertAuthority): CaKeys {
  return {
    tls_ca_certs: ca.trustedTls.map((k) => k.certPem),
    ssh_ca_keys: ca.trustedSsh.map((k) => k.publicKey),
  };
}

/** The trust bundle a join result carries: every trusted host and user CA key. */
export function trustBundleOf(ctx: ServerContext): TrustBundle {
  return { host: caKeysOf(ctx.cas.host), user: caKeysOf(ctx.cas.user) };
}

/** Inputs of {@linkcode issueUserCertificates}: a subject and its key. */
export interface UserCertificateRequest {
  /** The bot. */
  bot: Bot;
  /** X.509 subject the certificate carries. */
  subject: NameAttribute[];
  /** Subject key of the X.509 certificate. */
  tlsPublicKey: CryptoKey;
  /** Its SubjectPublicKeyInfo DER, canonical (saves exporting the key). */
  tlsPublicKeySpki?: Uint8Array;
  /** Subject key of the SSH certificate. */
  sshPublicKey: CryptoKey;
  /** Its SSH public-key blob (saves exporting the key). */
  sshPublicKeyBlob?: Uint8Array;
  /** Lifetime, already capped. */
  ttlSeconds: number;
}

/** The roles a bot's certificates carry: its user role first, then its roles. */
export function botCertificateRoles(bot: Bot): string[] {
  const user = botUserName(bot.metadata.name);
  return [user, ...bot.spec.roles.filter((x) => x !== user)];
}

/**
 * Issues an X.509 client certificate and an OpenSSH user certificate from the
 * user CA for `r.subject`, with the bot's SSH principals; the X.509 one by
 * `x509`'s key (default the P-256 key). Certificates whose subject is an
 * identity are remembered as verified (§2).
 */
export async function issueUserCertificates(
  ctx: ServerContext,
  r: UserCertificateRequest,
  x509?: X509Signer,
): Promise<IssuedBotCertificates> {
  const { certificates, remember } = await signUserCertificates(ctx, r, x509);
  await remember();
  return certificates;
}

/** Signed certificates and the verified-certificate cache entry still to make for them. */
export interface SignedCertificates {
  /** The certificates. */
  certificates: IssuedBotCertificates;
  /** Remembers the X.509 certificate as verified (a digest: a WebCrypto call). */
  remember(): Promise<void>;
}

/** The user CA X.509 key that signs a certificate, and the CA certificates that verify it. */
export interface X509Signer {
  /** The signing key. */
  key: TlsCaKey;
  /** Every trusted key of its algorithm, the signing key first (`tls_ca_certs`). */
  trusted: TlsCaKey[];
}

/**
 * The X.509 signer of a join's certificate for subject key `subjectKey`: the
 * user CA's Ed25519 key for an Ed25519 subject key when the signing key set
 * has one (an Ed25519 signature costs a fraction of a P-256 one, and only
 * Keybound verifies a bot's own certificate), else the P-256 key. Every other
 * certificate, outputs for third-party TLS stacks included, stays P-256.
 */
export function joinX509Signer(ca: CertAuthority, subjectKey: CryptoKey): X509Signer | undefined {
  if (algOf(subjectKey) !== "EdDSA" || !ca.tlsEd25519) return undefined;
  return { key: ca.tlsEd25519, trusted: ca.trustedTlsEd25519 };
}

/** {@linkcode issueUserCertificates} without waiting for the cache entry. */
async function signUserCertificates(
  ctx: ServerContext,
  r: UserCertificateRequest,
  x509?: X509Signer,
): Promise<SignedCertificates> {
  const userCa = ctx.cas.user;
  const tls = x509?.key ?? userCa.tls;
  const ssh = userCa.ssh;
  if (!tls || !ssh) throw new KeyboundError("INTERNAL", "user CA is incomplete");
  if (!userCaKeyMaySign(tls.keyPair.publicKey, r.subject, r.tlsPublicKey)) {
    // Only a bug gets here (joinX509Signer picks the Ed25519 key for joins of Ed25519
    // keys alone): sign nothing request auth would refuse.
    throw new KeyboundError(
      "INTERNAL",
      "the user CA's Ed25519 X.509 key signs only Ed25519 bots' join certificates",
    );
  }
  const user = botUserName(r.bot.metadata.name);
  const now = ctx.now().getTime();
  const notBefore = new Date(now - CERT_BACKDATE_MS);
  const notAfter = new Date(now + r.ttlSeconds * 1000);
  const logins = await botLogins(ctx, r.bot);
  // An empty principal list means "any user" to sshd; Teleport uses a placeholder instead.
  const principals = logins.length > 0 ? logins : [`-teleport-nologin-${randomUuid()}`];
  // Names stored before their bounds, and roles that together grant more logins than OpenSSH
  // reads (each write was within it): issued all the same, told once per name.
  warnNamesOverBounds(ctx.log, r.bot, principals.length);
  const subject = r.subject;
  const serial = randomSerial();
  const [certDer, sshCert] = await Promise.all([
    issueCertificate({
      issuer: {
        subject: tls.subjectDer,
        privateKey: tls.keyPair.privateKey,
        publicKey: tls.keyPair.publicKey,
      },
      subject,
      publicKey: r.tlsPublicKey,
      ...(r.tlsPublicKeySpki ? { publicKeySpki: r.tlsPublicKeySpki } : {}),
      serial,
      notBefore,
      notAfter,
      extKeyUsage: ["clientAuth"],
    }),
    issueSshCertificate({
      caPrivateKey: ssh.keyPair.privateKey,
      caPublicKey: ssh.keyPair.publicKey,
      publicKey: r.sshPublicKey,
      ...(r.sshPublicKeyBlob ? { publicKeyBlob: r.sshPublicKeyBlob } : {}),
      certType: "user",
      keyId: user,
      principals,
      validAfter: notBefore,
      validBefore: notAfter,
    }),
  ]);
  return {
    certificates: {
      tls_cert: certificateToPem(certDer),
      tls_ca_certs: (x509?.trusted ?? userCa.trustedTls).map((k) => k.certPem),
      ssh_cert: sshCert,
      ssh_ca_keys: userCa.trustedSsh.map((k) => k.publicKey),
      expires: notAfter,
    },
    remember: () =>
      rememberIssuedCertificate(tls, {
        der: certDer,
        subject,
        publicKey: r.tlsPublicKey,
        serialHex: toHex(serial),
        notBefore,
        notAfter,
      }),
  };
}

/**
 * Signs the X.509 and SSH certificates of a join (the X.509 one by
 * {@linkcode joinX509Signer}); the caller makes the verified-certificate
 * entry (`remember`) while it commits.
 */
export function issueBotCertificates(
  ctx: ServerContext,
  r: BotCertificateRequest,
): Promise<SignedCertificates> {
  return signUserCertificates(ctx, {
    bot: r.bot,
    subject: botSubject({
      botName: r.bot.metadata.name,
      botInstanceId: r.instanceId,
      generation: r.generation,
      joinToken: r.tokenName,
      roles: botCertificateRoles(r.bot),
    }),
    tlsPublicKey: r.tlsPublicKey,
    ...(r.tlsPublicKeySpki ? { tlsPublicKeySpki: r.tlsPublicKeySpki } : {}),
    sshPublicKey: r.sshPublicKey,
    ...(r.sshPublicKeyBlob ? { sshPublicKeyBlob: r.sshPublicKeyBlob } : {}),
    ttlSeconds: r.ttlSeconds,
  }, joinX509Signer(ctx.cas.user, r.tlsPublicKey));
}
