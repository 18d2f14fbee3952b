/**
 * Cluster bootstrap: on the first start, creates the certificate authorities
 * and the join-session sealing key in one atomic commit; on later starts (or
 * when another process won the race) loads them. Private keys rest in the
 * backend as base64 PKCS#8 and are imported non-extractable.
 *
 * @module
 */
import * as z from "zod";
import { ConfigError, KeyboundError } from "../errors.ts";
import { randomBytes } from "../crypto/random.ts";
import { parseCertificate, spkiPin } from "../pki/mod.ts";
import type { JsonValue, Mutation } from "../storage/backend.ts";
import type { Backend } from "../storage/backend.ts";
import { fromBase64, toBase64 } from "../util/encoding.ts";
import { type Logger, quoteLogText } from "../util/log.ts";
import type { CaSet, CaType, CertAuthority, ServerContext } from "./context.ts";
import { CA_REVISION_KEY, caKey, CLUSTER_META, JOIN_SESSION_KEY } from "./keys.ts";
import { readCaSet } from "./rotation/cache.ts";
import {
  CA_VALIDITY_MS,
  corruptCa,
  MAX_NEW_CLUSTER_NAME,
  newKeySet,
  X509_NAME_UPPER_BOUND,
} from "./rotation/material.ts";
import { CA_TYPES, type StoredCa, type StoredKeySet } from "./rotation/schema.ts";

/** Validity of CA certificates. */
export { CA_VALIDITY_MS };

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

const SessionKeyRecord = z.object({ aes256_gcm_key: z.string() });

/**
 * A cluster name: what an existing cluster may be called. Clusters created
 * before {@linkcode NewClusterName} bounded the length keep their longer
 * names (the name is in every identity the cluster issued; it cannot change).
 */
export const ClusterName = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/,
  'use 1-253 letters, digits, ".", "_" or "-", starting with a letter or digit',
);

/**
 * The name of a cluster being created: also short enough that its CA
 * certificates' subjects stay within X.509's bound (docs/operations.md,
 * "Cluster name").
 */
export const NewClusterName = ClusterName.max(
  MAX_NEW_CLUSTER_NAME,
  `a new cluster's name is at most ${MAX_NEW_CLUSTER_NAME} characters (its CA certificates' ` +
    `common name, which X.509 bounds at ${X509_NAME_UPPER_BOUND}, is the name plus " Ed25519")`,
);

/** Where the name comes from: it may be the host's name, which the operator never typed. */
const SET_CLUSTER_NAME =
  "set it with --cluster-name (default: the host name), or CLUSTER_NAME on Workers";

/**
 * Throws `ConfigError` unless `name` is a usable cluster name: for a cluster
 * being created if `creating` ({@linkcode NewClusterName}), else for an
 * existing one ({@linkcode ClusterName}). Not a string at all is its own
 * refusal: a Worker's bindings are not checked against its types, so an
 * unset `CLUSTER_NAME` arrives here as `undefined`.
 */
export function validateClusterName(name: unknown, creating = false): void {
  if (typeof name !== "string") throw new ConfigError(`no cluster name: ${SET_CLUSTER_NAME}`);
  const r = (creating ? NewClusterName : ClusterName).safeParse(name);
  if (!r.success) {
    // Quoted as a JSON string (a quote or newline in the name cannot pass for the end of it);
    // a long name is cut, the ellipsis outside the quotes and the length its own.
    const what = quoteLogText(name.slice(0, 80)) + (name.length > 80 ? "…" : "");
    const length = `${name.length} character${name.length === 1 ? "" : "s"}`;
    throw new ConfigError(
      `invalid cluster name ${what} (${length}): ${r.error.issues[0].message}; ${SET_CLUSTER_NAME}`,
    );
  }
}

function corrupt(what: string, cause?: unknown): KeyboundError {
  return corruptCa(what, cause);
}

function storedCa(type: CaType, active: StoredKeySet): StoredCa {
  return { type, format: 2, active, rotation: { phase: "standby" }, dropped: [], cross_signed: [] };
}

async function generateCluster(clusterName: string, now: Date): Promise<Mutation[]> {
  const records: [CaType, StoredCa][] = [];
  for (const type of CA_TYPES) {
    records.push([type, storedCa(type, await newKeySet(type, clusterName, now))]);
  }
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
    { type: "set", key: CA_REVISION_KEY, value: { changed_at: now.toISOString() } },
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
    validateClusterName(options.clusterName, true);
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
  if (m.data.cluster_name.length > MAX_NEW_CLUSTER_NAME) {
    // Created before the bound: it keeps working (OpenSSL parses and verifies such certificates;
    // pyca/cryptography warns), and its next CA key sets carry the same subjects.
    options.log.warn("the cluster name is longer than a new cluster's may be", {
      length: m.data.cluster_name.length,
      max: MAX_NEW_CLUSTER_NAME,
      why: `CA certificate common names exceed X.509's ${X509_NAME_UPPER_BOUND} characters; ` +
        "strict X.509 parsers may refuse them (docs/operations.md, Cluster name)",
    });
  }
  const ctx: ServerContext = {
    backend,
    clusterName: m.data.cluster_name,
    version: options.version,
    now,
    cas: await loadCas(backend, m.data.cluster_name, now(), options.log),
    sessionKey: await loadSessionKey(backend),
    log: options.log,
  };
  return ctx;
}

/**
 * Loads every CA. A CA type the cluster predates (the SPIFFE CA) is created
 * with the same "create if absent" commit, so instances starting together
 * agree on one; any other missing CA is corruption.
 */
async function loadCas(
  backend: Backend,
  clusterName: string,
  now: Date,
  log: Logger,
): Promise<CaSet> {
  let { cas, missing } = await readCaSet(backend);
  if (missing.length > 0) {
    for (const type of missing) {
      if (type !== "spiffe") throw corrupt(`${type} certificate authority (missing)`);
    }
    const r = await backend.commit({
      checks: missing.map((type) => ({ key: caKey(type), version: null })),
      mutations: [
        ...await Promise.all(missing.map(async (type): Promise<Mutation> => ({
          type: "set",
          key: caKey(type),
          value: storedCa(type, await newKeySet(type, clusterName, now)) as unknown as JsonValue,
        }))),
        { type: "set", key: CA_REVISION_KEY, value: { changed_at: now.toISOString() } },
      ],
    });
    if (r.ok) log.info("created certificate authorities", { types: missing });
    ({ cas, missing } = await readCaSet(backend));
    if (missing.length > 0) throw corrupt(`${missing[0]} certificate authority (missing)`);
  }
  return cas as CaSet;
}

/**
 * `sha256:<hex>` of a CA's SubjectPublicKeyInfo (Teleport's CA pin): for the
 * host CA the key that signs the auth service's TLS certificate now (what a
 * new bot must pin), otherwise the signing key.
 */
export function caPin(ca: CertAuthority): Promise<string> {
  const key = ca.serverTls ?? ca.tls;
  if (!key) throw new KeyboundError("INTERNAL", `${ca.type} CA has no X.509 certificate`);
  return spkiPin(parseCertificate(key.certDer));
}
