/**
 * The auth service, runtime-agnostic: bootstrap, application and the
 * certificates it issues for itself.
 *
 * @module
 */
export { type AppOptions, createApp } from "./app.ts";
export { DEFAULT_RATE_LIMIT, type RateLimitConfig } from "./rate_limit/token_bucket.ts";
export { createDiagApp, type Readiness, readiness } from "./diag.ts";
export { AuthMetrics } from "./metrics.ts";
export { parseWebOrigin } from "./web_origin.ts";
export {
  bootstrapCluster,
  type BootstrapOptions,
  caPin,
  validateClusterName,
} from "./bootstrap.ts";
export type {
  CaSet,
  CaType,
  CertAuthority,
  DroppedCaKey,
  JwtCaKey,
  ServerContext,
  SshCaKey,
  TlsCaKey,
} from "./context.ts";
export type { Rotation } from "./rotation/schema.ts";
export type { RotationMode, RotationPhase } from "../protocol/ca_rotation.ts";
export { type CaWatcher, type CaWatcherOptions, startCaWatcher } from "./rotation/watch.ts";
export type { AppEnv, VerifiedIdentity } from "./hono_env.ts";
export {
  ADMIN_IDENTITY_TTL_MS,
  isAdminIdentityCurrent,
  isIpAddress,
  issueAdminIdentity,
  issueAdminIdentityFile,
  type IssuedCertificate,
  issueServerCertificate,
  type ServerAddresses,
  serverCertificateNames,
  serverCertificateRenewAt,
  servingKeyChanged,
} from "./identity.ts";
export {
  requireAdmin,
  requireBot,
  type SignedRequestInput,
  type VerifyOptions,
  verifySignedRequest,
} from "./request_auth.ts";
