/**
 * Cluster bootstrap: on the first start, creates the certificate authorities
 * and the join-session sealing key in one atomic commit; on later starts (or
 * when another process won the race) loads them. Private keys rest in the
 * backend as base64 PKCS#8 and are imported non-extractable.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError, KeyboundError } from "../errors.ts";
import {
  generateStorableKeyPair,
  importPkcs8,
  type KeyAlgorithm,
  keyId,
  type KeyPair,
} from "../crypto/keys.ts";
import { randomBytes } from "../crypto/random.ts";
import { toAuthorizedKey } from "../crypto/ssh_wire.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  NAME_OIDS,
  parseCertificate,
  spkiPin,
  verifyCertificateSignature,
} from "../pki/mod.ts";
import { HOST_CA_OU, USER_CA_OU } from "../protocol/identity_file.ts";
import type { JsonValue, Mutation } from "../storage/backend.ts";
import type { Backend } from "../storage/backend.ts";
import { fromBase64, fromPem, toBase64 } from "../util/encoding.ts";
import type { Logger } from "../util/log.ts";
import type { CaType, CertAuthority, ServerContext } from "./context.ts";
import { caKey, CLUSTER_META, JOIN_SESSION_KEY } from "./keys.ts";

/** Validity of CA certificates. */
export const CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;

/** Options of {@linkcode bootstrapCluster}. */
export interface BootstrapOptions {
  /** The cluster name; must match the stored one on later starts. */
  clusterName: string;
  /** Clock; defaults to the system clock. */
  now?: () => Date;
  /** Logger. */
  log: Logger;
  /** Server version reported by `/v1/ping`. */
  version: string;
}

const ClusterMeta = z.object({ cluster_name: z.string(), created_at: z.string() });

const StoredKey = z.string().min(1); // base64 PKCS#8
const StoredCa = z.object({
  type: z.enum(["user", "host", "bound_keypair", "jwt"]),
  tls: z.object({ cert_pem: z.string(), key_pkcs8: StoredKey }).optional(),
  ssh: z.object({ key_pkcs8: StoredKey }).optional(),
  jwt: z.array(z.object({ key_pkcs8: StoredKey })).min(1).optional(),
});
type StoredCa = z.infer<typeof StoredCa>;

const SessionKeyRecord = z.object({ aes256_gcm_key: z.string() });

const CLUSTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Throws `ConfigError` unless `name` is a usable cluster name. */
export function validateClusterName(name: string): void {
  if (!CLUSTER_NAME_RE.test(name)) {
    throw new ConfigError(
      `invalid cluster name "${name}": use 1-253 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
}

async function storableKey(alg: KeyAlgorithm): Promise<{ keyPair: KeyPair; stored: string }> {
  const kp = await generateStorableKeyPair(alg);
  return {
    keyPair: { privateKey: kp.privateKey, publicKey: kp.publicKey, alg: kp.alg },
    stored: toBase64(fromPem("PRIVATE KEY", kp.pkcs8Pem)),
  };
}

/** Creates the X.509 + SSH CA of type user or host. */
async function newCertCa(
  type: "user" | "host",
  clusterName: string,
  now: Date,
): Promise<StoredCa> {
  const tlsKey = await storableKey("ES256");
  const sshKey = await storableKey("EdDSA");
  const certDer = await createSelfSignedCA({
    subject: [
      { oid: NAME_OIDS.commonName, value: clusterName },
      { oid: NAME_OIDS.organization, value: clusterName },
      { oid: NAME_OIDS.organizationalUnit, value: type === "user" ? USER_CA_OU : HOST_CA_OU },
    ],
    keyPair: tlsKey.keyPair,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
  });
  return {
    type,
    tls: { cert_pem: certificateToPem(certDer), key_pkcs8: tlsKey.stored },
    ssh: { key_pkcs8: sshKey.stored },
  };
}

async function newJwtCa(type: "bound_keypair" | "jwt", alg: KeyAlgorithm): Promise<StoredCa> {
  return { type, jwt: [{ key_pkcs8: (await storableKey(alg)).stored }] };
}

function corrupt(what: string, cause?: unknown): KeyboundError {
  return new KeyboundError(
    "STORAGE_ERROR",
    `stored ${what} is malformed`,
    cause ? { cause } : undefined,
  );
}

async function importStored(stored: string, what: string): Promise<KeyPair> {
  try {
    return await importPkcs8(fromBase64(stored));
  } catch (cause) {
    throw corrupt(what, cause);
  }
}

/** Imports a stored CA record; keys become non-extractable. */
async function loadCa(type: CaType, value: unknown): Promise<CertAuthority> {
  const what = `${type} certificate authority`;
  const r = StoredCa.safeParse(value);
  if (!r.success || r.data.type !== type) throw corrupt(what, r.error);
  const s = r.data;
  const ca: CertAuthority = { type };
  if (s.tls) {
    const keyPair = await importStored(s.tls.key_pkcs8, what);
    const [certDer] = certificatesFromPem(s.tls.cert_pem);
    const cert = parseCertificate(certDer);
    if (!(await verifyCertificateSignature(cert, keyPair.publicKey))) {
      throw corrupt(`${what} (certificate does not match its key)`);
    }
    ca.tls = { certDer, certPem: certificateToPem(certDer), keyPair };
  }
  if (s.ssh) {
    const keyPair = await importStored(s.ssh.key_pkcs8, what);
    ca.ssh = { publicKey: await toAuthorizedKey(keyPair.publicKey), keyPair };
  }
  if (s.jwt) {
    ca.jwt = [];
    for (const k of s.jwt) {
      const keyPair = await importStored(k.key_pkcs8, what);
      ca.jwt.push({ kid: await keyId(keyPair.publicKey), keyPair });
    }
  }
  return ca;
}

async function generateCluster(clusterName: string, now: Date): Promise<Mutation[]> {
  const records: [CaType, StoredCa][] = [
    ["user", await newCertCa("user", clusterName, now)],
    ["host", await newCertCa("host", clusterName, now)],
    ["bound_keypair", await newJwtCa("bound_keypair", "EdDSA")],
    ["jwt", await newJwtCa("jwt", "ES256")],
  ];
  const sessionKey = randomBytes(32);
  const mutations: Mutation[] = [
    {
      type: "set",
      key: CLUSTER_META,
      value: { cluster_name: clusterName, created_at: now.toISOString() },
    },
    ...records.map(([type, value]): Mutation => ({
      type: "set",
      key: caKey(type),
      value: value as unknown as JsonValue,
    })),
    { type: "set", key: JOIN_SESSION_KEY, value: { aes256_gcm_key: toBase64(sessionKey) } },
  ];
  sessionKey.fill(0);
  return mutations;
}

async function loadSessionKey(backend: Backend): Promise<CryptoKey> {
  const e = await backend.get(JOIN_SESSION_KEY);
  const r = SessionKeyRecord.safeParse(e?.value);
  if (!r.success) throw corrupt("join session key", r.error);
  const raw = fromBase64(r.data.aes256_gcm_key);
  if (raw.length !== 32) throw corrupt("join session key (not 256 bits)");
  try {
    return await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
  } finally {
    raw.fill(0);
  }
}

/**
 * Creates the cluster on first start or loads it. Two processes racing on
 * one backend cannot both create it: the creating commit requires the
 * cluster record to be absent, and the loser loads the winner's CAs.
 * Throws `ConfigError` if the backend belongs to a cluster of another name.
 *
 * @example Create or load a cluster on a backend
 * ```ts ignore
 * import { bootstrapCluster, MemoryBackend, silentLogger } from "@keybound/keybound";
 *
 * const ctx = await bootstrapCluster(new MemoryBackend(), {
 *   clusterName: "example.com",
 *   log: silentLogger,
 *   version: "0.1.0",
 * });
 * console.log(ctx.clusterName); // "example.com"
 * ```
 */
export async function bootstrapCluster(
  backend: Backend,
  options: BootstrapOptions,
): Promise<ServerContext> {
  const now = options.now ?? (() => new Date());
  validateClusterName(options.clusterName);
  let meta = await backend.get(CLUSTER_META);
  if (meta === null) {
    const mutations = await generateCluster(options.clusterName, now());
    const r = await backend.commit({ checks: [{ key: CLUSTER_META, version: null }], mutations });
    if (r.ok) options.log.info("created cluster", { cluster: options.clusterName });
    else options.log.info("another process created the cluster first; loading it");
    meta = await backend.get(CLUSTER_META);
  }
  const m = ClusterMeta.safeParse(meta?.value);
  if (!m.success) throw corrupt("cluster record", m.error);
  if (m.data.cluster_name !== options.clusterName) {
    throw new ConfigError(
      `this data directory holds cluster "${m.data.cluster_name}", not "${options.clusterName}": start with --cluster-name ${m.data.cluster_name} or use another data directory`,
    );
  }
  const load = async (type: CaType) => loadCa(type, (await backend.get(caKey(type)))?.value);
  const ctx: ServerContext = {
    backend,
    clusterName: m.data.cluster_name,
    version: options.version,
    now,
    cas: {
      user: await load("user"),
      host: await load("host"),
      boundKeypair: await load("bound_keypair"),
      jwt: await load("jwt"),
    },
    sessionKey: await loadSessionKey(backend),
    log: options.log,
  };
  for (const type of ["user", "host"] as const) {
    if (!ctx.cas[type].tls || !ctx.cas[type].ssh) throw corrupt(`${type} certificate authority`);
  }
  for (const type of ["boundKeypair", "jwt"] as const) {
    if (!ctx.cas[type].jwt?.length) throw corrupt(`${type} certificate authority`);
  }
  return ctx;
}

/** `sha256:<hex>` of a CA certificate's SubjectPublicKeyInfo (Teleport's CA pin). */
export function caPin(ca: CertAuthority): Promise<string> {
  if (!ca.tls) throw new KeyboundError("INTERNAL", `${ca.type} CA has no X.509 certificate`);
  return spkiPin(parseCertificate(ca.tls.certDer));
}
