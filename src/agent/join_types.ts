/**
 * The agent's view of the join client (`join_client.ts`): the parameters it
 * takes and the key store it calls back into. Declared here so the identity
 * service can be driven by the real client or by a test double.
 *
 * @module
 */
import type { KeyPair } from "../crypto/keys.ts";
import type { JoinResult } from "../protocol/messages.ts";

export type { JoinResult };

/** The bound keys the join client may be challenged for, and rotation. */
export interface BoundKeyStore {
  /** The private key whose public half is `authorizedKey`, or null if this client does not hold it. */
  findPrivateKey(authorizedKey: string): Promise<CryptoKey | null>;
  /**
   * Generates a new bound key, persists it in the key history, and returns
   * its public key as an authorized_keys line. Persisting happens before the
   * answer is sent, so a crash never loses a key the server may bind.
   */
  generateRotationKey(): Promise<string>;
}

/** Parameters of one bound-keypair join. */
export interface JoinParams {
  /** `https://host:port` of the auth service. */
  baseUrl: string;
  /** The fetch to use (carries the trust configuration). */
  fetch?: typeof fetch;
  /** Join token name. */
  tokenName: string;
  /** Certificate subject key for the new certificates. */
  subjectKey: KeyPair;
  /** Requested certificate lifetime. */
  ttlSeconds: number;
  /** Registration secret: only while the client has no join state. */
  initialJoinSecret?: string;
  /** The last join state, byte for byte. */
  previousJoinState?: string;
  /** Present for a refresh (case D): the current, still valid certificate and its key. */
  identity?: { certDer: Uint8Array; privateKey: CryptoKey };
  /** Bound keys. */
  keyStore: BoundKeyStore;
  /**
   * Called before each challenge solution is sent, the only answer after
   * which the server may commit: stores what a resume needs (the pending
   * join record). The join waits for it; if it throws, nothing is sent.
   */
  beforeCommit?: (pending: PendingCommit) => Promise<void>;
}

/** What {@linkcode JoinParams.beforeCommit} is told. */
export interface PendingCommit {
  /** The sealed session about to be continued. */
  session: string;
  /** The challenged key: the key bound if this answer commits (authorized_keys). */
  boundPublicKey: string;
  /** Cluster name, from the challenge. */
  clusterName: string;
}

/** Parameters of a resume (docs/protocol.md §4.9). */
export interface ResumeParams {
  /** `https://host:port` of the auth service. */
  baseUrl: string;
  /** The fetch to use. */
  fetch?: typeof fetch;
  /** The sealed session that was being continued. */
  session: string;
  /** This client's claim (from the pending record, stored before the first attempt). */
  resumeId: string;
  /** Cluster name. */
  clusterName: string;
  /** The bound key the join bound. */
  boundKey: CryptoKey;
  /** The certificate subject key of the join. */
  subjectKey: CryptoKey;
  /** Signing time of the proofs (default: now). */
  now?: Date;
}

/** A join bound to a server and transport: everything but `baseUrl` and `fetch`. */
export type BoundJoin = (params: Omit<JoinParams, "baseUrl" | "fetch">) => Promise<JoinResult>;
/** A resume bound to a server and transport. */
export type BoundResume = (params: Omit<ResumeParams, "baseUrl" | "fetch">) => Promise<JoinResult>;

/** Performs one join; `joinBoundKeypair` from `join_client.ts` has this shape. */
export type JoinFn = (params: JoinParams) => Promise<JoinResult>;
