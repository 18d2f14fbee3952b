/**
 * Certificates as PEM: one "CERTIFICATE" block per DER certificate.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { parsePemBlocks, toPem } from "../util/encoding.ts";

/** PEM "CERTIFICATE" block of a DER certificate. */
export function certificateToPem(der: Uint8Array): string {
  return toPem("CERTIFICATE", der);
}

/**
 * The DER of every "CERTIFICATE" block in `pem`, in order; other blocks are
 * skipped. Throws `BadParameterError` if there is none, since an empty CA
 * bundle is always a configuration mistake.
 */
export function certificatesFromPem(pem: string): Uint8Array<ArrayBuffer>[] {
  let blocks;
  try {
    blocks = parsePemBlocks(pem).filter((b) => b.label === "CERTIFICATE");
  } catch (cause) {
    throw new BadParameterError("invalid PEM: bad base64 in a block", { cause });
  }
  if (blocks.length === 0) throw new BadParameterError('no PEM "CERTIFICATE" block found');
  return blocks.map((b) => b.der);
}
