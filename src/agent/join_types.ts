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
}

/** Performs one join; `joinBoundKeypair` from `join_client.ts` has this shape. */
export type JoinFn = (params: JoinParams) => Promise<JoinResult>;
