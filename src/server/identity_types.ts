/**
 * The parts of a parsed certificate route handlers rely on, kept separate so
 * route modules do not depend on the X.509 parser's full type.
 *
 * @module
 */

/** Minimal view of a verified X.509 certificate. */
export interface ParsedCertificateLike {
  /** Serial number, hex. */
  serialHex: string;
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
}
