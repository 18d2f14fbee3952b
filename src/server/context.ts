/**
 * What every server module receives: the backend, the cluster's identity and
 * certificate authorities (keys already imported, non-extractable), a clock
 * and a logger. Built once at startup by `bootstrapCluster`.
 *
 * @module
 */
import type { KeyPair } from "../crypto/keys.ts";
import type { Backend } from "../storage/backend.ts";
import type { Logger } from "../util/log.ts";

/** The types of certificate authority a cluster has. */
export type CaType = "user" | "host" | "bound_keypair" | "jwt";

/** A certificate authority, loaded. */
export interface CertAuthority {
  /** Which CA. */
  type: CaType;
  /** X.509 half (user and host CAs). */
  tls?: {
    /** Self-signed CA certificate, DER. */
    certDer: Uint8Array;
    /** The same, PEM. */
    certPem: string;
    /** Signing key. */
    keyPair: KeyPair;
  };
  /** OpenSSH half (user and host CAs). */
  ssh?: {
    /** CA public key, authorized_keys text. */
    publicKey: string;
    /** Signing key. */
    keyPair: KeyPair;
  };
  /** JWT half (bound_keypair and jwt CAs): the active key first, then other trusted keys. */
  jwt?: {
    /** Key ID (base64url SHA-256 of SPKI). */
    kid: string;
    /** Signing key. */
    keyPair: KeyPair;
  }[];
}

/** Everything a request handler needs. */
export interface ServerContext {
  /** State. */
  backend: Backend;
  /** Cluster name: `iss`/`aud` of challenges and join states. */
  clusterName: string;
  /** Server version string. */
  version: string;
  /** Current time (injectable for tests). */
  now(): Date;
  /** The cluster's CAs. */
  cas: {
    user: CertAuthority;
    host: CertAuthority;
    boundKeypair: CertAuthority;
    jwt: CertAuthority;
  };
  /** AES-256-GCM key sealing join sessions. */
  sessionKey: CryptoKey;
  /** Logger. */
  log: Logger;
}
