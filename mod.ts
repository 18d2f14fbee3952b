/**
 * Keybound: bound-keypair machine identity for Deno and edge runtimes.
 *
 * This module is the runtime-agnostic public API: the auth service (a hono
 * app over a pluggable storage backend), the bound-keypair join client, the
 * wire protocol helpers, and the key, X.509 and OpenSSH certificate
 * primitives they are built on. Runtime adapters (Deno KV, filesystem, TLS
 * serving, Durable Objects) live in `runtime-adapters/`.
 *
 * @example Run an auth service in memory
 * ```ts ignore
 * import { bootstrapCluster, createAuthHandler, MemoryBackend, silentLogger } from "./mod.ts";
 *
 * const ctx = await bootstrapCluster(new MemoryBackend(), {
 *   clusterName: "example.com",
 *   log: silentLogger,
 *   version: "0.1.0",
 * });
 * const handle = createAuthHandler(ctx);
 * Deno.serve((req, info) => handle(req, { remoteAddr: info.remoteAddr.hostname }));
 * ```
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/crypto/keys.ts";
export * from "./src/crypto/random.ts";
export * from "./src/crypto/ssh_wire.ts";
export * from "./src/pki/mod.ts";
export type {
  AtomicOperation,
  Backend,
  Check,
  CommitResult,
  Entry,
  JsonValue,
  Key,
  ListOptions,
  Mutation,
} from "./src/storage/backend.ts";
export { MemoryBackend } from "./src/storage/memory.ts";
export {
  createLogger,
  type LogFields,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  silentLogger,
} from "./src/util/log.ts";
export {
  ADMIN_IDENTITY_TTL_MS,
  bootstrapCluster,
  type BootstrapOptions,
  caPin,
  type CaSet,
  type CaType,
  type CaWatcher,
  type CaWatcherOptions,
  type CertAuthority,
  type DroppedCaKey,
  isAdminIdentityCurrent,
  issueAdminIdentity,
  issueAdminIdentityFile,
  type IssuedCertificate,
  issueServerCertificate,
  type JwtCaKey,
  type Rotation,
  type RotationMode,
  type RotationPhase,
  type ServerAddresses,
  serverCertificateNames,
  type ServerContext,
  servingKeyChanged,
  type SignedRequestInput,
  type SshCaKey,
  startCaWatcher,
  type TlsCaKey,
  validateClusterName,
  type VerifiedIdentity,
  type VerifyOptions,
  verifySignedRequest,
} from "./src/server/mod.ts";
export type { ParsedCertificateLike } from "./src/server/hono_env.ts";
export type { SubjectIdentity } from "./src/protocol/subject.ts";
export type { CaKeys, TrustBundle } from "./src/protocol/messages.ts";
export { type ConnectionInfo, createAuthHandler, type FetchHandler } from "./src/server/handler.ts";
export { joinBoundKeypair, resumeBoundKeypair } from "./src/agent/join_client.ts";
export type {
  BoundKeyStore,
  JoinFn,
  JoinParams,
  JoinResult,
  PendingCommit,
  ResumeParams,
} from "./src/agent/join_types.ts";
export {
  challengeHash,
  type RequestSigner,
  type RequestToSign,
  type SignedRequestClaims,
  signRequest,
} from "./src/protocol/signed_request.ts";
export {
  formatIdentityFile,
  type IdentityFile,
  type IdentityFileParts,
  parseIdentityFile,
} from "./src/protocol/identity_file.ts";
