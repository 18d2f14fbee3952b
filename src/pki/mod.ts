/**
 * Certificates Keybound issues and reads: X.509 v3 for TLS identities and
 * OpenSSH certificates for SSH access.
 *
 * @module
 */
export * from "./x509.ts";
export * from "./x509_parse.ts";
export * from "./ssh_cert.ts";
export { ecdsaDerToRaw, ecdsaRawToDer, parseIpAddress } from "./der.ts";
// Referenced by the signatures above; re-exported so the module's docs are complete.
export type { KeyAlgorithm } from "../crypto/keys.ts";
export type { SshKeyType } from "../crypto/ssh_wire.ts";
