/**
 * The hono environment type shared by every route module.
 *
 * @module
 */
import type { SubjectIdentity } from "../protocol/subject.ts";
import type { ParsedCertificateLike } from "./identity_types.ts";

export type { ParsedCertificateLike };

/**
 * An identity proven by a signed request (docs/protocol.md §2): what its
 * certificate subject states, plus the proof's key and certificate.
 */
export interface VerifiedIdentity extends SubjectIdentity {
  /** The certificate's public key. */
  publicKey: CryptoKey;
  /** The verified certificate. */
  cert: ParsedCertificateLike;
  /** Hex SHA-256 of the certificate DER. */
  certSha256?: string;
  /** `chash` claim, if the request carried one. */
  chash?: string;
}

/** Hono generics for Keybound routes. */
export type AppEnv = {
  Bindings: {
    /** Peer address, passed by the HTTP adapter as `app.fetch(req, {remoteAddr})`. */
    remoteAddr?: string;
  };
  Variables: {
    /** Set by the signed-request middleware. */
    identity: VerifiedIdentity;
  };
};
