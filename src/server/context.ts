/**
 * What every server module receives: the backend, the cluster's identity and
 * certificate authorities (keys already imported, non-extractable), a clock
 * and a logger. Built once at startup by `bootstrapCluster`; the CAs are
 * replaced as a whole when a rotation changes them (src/server/rotation/).
 *
 * @module
 */
import type { KeyPair } from "../crypto/keys.ts";
import type { Backend } from "../storage/backend.ts";
import type { Logger } from "../util/log.ts";
import type { Rotation } from "./rotation/schema.ts";

/** The types of certificate authority a cluster has. */
export type CaType = "user" | "host" | "bound_keypair" | "jwt" | "spiffe";

/** An X.509 CA certificate and its key. */
export interface TlsCaKey {
  /** Self-signed CA certificate, DER. */
  certDer: Uint8Array;
  /** The same, PEM. */
  certPem: string;
  /** Its subject Name DER (the issuer of what it signs). */
  subjectDer: Uint8Array;
  /** Its end of validity, read at load (`/metrics` shows it on every scrape). */
  notAfter: Date;
  /** The key pair. */
  keyPair: KeyPair;
}

/** An OpenSSH CA key. */
export interface SshCaKey {
  /** CA public key, authorized_keys text. */
  publicKey: string;
  /** The key pair. */
  keyPair: KeyPair;
}

/** A JWT signing key. */
export interface JwtCaKey {
  /** Key ID (base64url SHA-256 of SPKI). */
  kid: string;
  /** The key pair. */
  keyPair: KeyPair;
}

/** A key a rotation dropped: public halves only, to recognise what it signed. */
export interface DroppedCaKey {
  /**
   * The dropped X.509 key: its CA certificate (PEM), public key and subject
   * key identifier (matched against a certificate's authority key identifier).
   */
  tls?: { certPem: string; publicKey: CryptoKey; keyId?: Uint8Array };
  /** The dropped set's Ed25519 X.509 key (user CA), if it had one; as `tls`. */
  tlsEd25519?: { certPem: string; publicKey: CryptoKey; keyId?: Uint8Array };
  /** The dropped SSH key, authorized_keys text. */
  sshPublicKey?: string;
  /** The dropped JWT key's id. */
  kid?: string;
  /** The dropped JWT key's public half (join states it signed: docs/security.md). */
  jwtPublicKey?: CryptoKey;
  /** When it was dropped (ISO 8601). */
  droppedAt: string;
}

/** A certificate authority, loaded. */
export interface CertAuthority {
  /** Which CA. */
  type: CaType;
  /** X.509 half (user, host and SPIFFE CAs): the key that signs now. */
  tls?: TlsCaKey;
  /** OpenSSH half (user and host CAs): the key that signs now. */
  ssh?: SshCaKey;
  /** JWT half (bound_keypair and jwt CAs): the signing key first, then other trusted keys. */
  jwt?: JwtCaKey[];
  /** Every trusted X.509 key, the signing key first. */
  trustedTls: TlsCaKey[];
  /**
   * User CA: the signing set's Ed25519 X.509 key, which signs the join
   * certificates of Ed25519 bots (src/server/join/certs.ts); absent when that
   * set was made before the key existed (then `tls` signs them).
   */
  tlsEd25519?: TlsCaKey;
  /**
   * User CA: every trusted Ed25519 X.509 key, the signing set's first. Kept
   * apart from `trustedTls`, which is what third parties' TLS stacks receive.
   */
  trustedTlsEd25519: TlsCaKey[];
  /** Every trusted SSH key, the signing key first. */
  trustedSsh: SshCaKey[];
  /**
   * The host CA key the auth service's own TLS certificate comes from: the
   * previous key until `update_servers` (docs/protocol.md §10).
   */
  serverTls?: TlsCaKey;
  /** Rotation state. */
  rotation: Rotation;
  /** Keys earlier rotations dropped, newest first. */
  dropped: DroppedCaKey[];
  /** Host CA: certificates of newer keys issued by the keys they replaced, PEM. */
  crossSigned: string[];
  /** Backend version of the stored record. */
  version: string;
}

/** The cluster's CAs, as one snapshot: replaced whole when any of them changes. */
export interface CaSet {
  /** User CA: bot and admin client certificates. */
  user: CertAuthority;
  /** Host CA: the auth service's TLS certificate, SSH host certificates. */
  host: CertAuthority;
  /** Bound-keypair CA: join-state documents. */
  boundKeypair: CertAuthority;
  /** JWT CA: JWT-SVIDs and the JWKS. */
  jwt: CertAuthority;
  /** SPIFFE CA: X.509 SVIDs. */
  spiffe: CertAuthority;
  /**
   * Version of the CA revision record when this snapshot was read: a join
   * commit requires it unchanged, so nothing signed by a stale snapshot is
   * committed (src/server/rotation/cache.ts).
   */
  revision: string | null;
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
  /** The cluster's CAs (re-read when a rotation changes them: see src/server/rotation/cache.ts). */
  cas: CaSet;
  /** AES-256-GCM key sealing join sessions. */
  sessionKey: CryptoKey;
  /** Logger. */
  log: Logger;
}
