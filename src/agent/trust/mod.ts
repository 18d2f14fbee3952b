/**
 * How the agent trusts the auth service: the host CA learned by pin, moved
 * by each join's trust bundle and, for a bot that missed a rotation, by a
 * cross-signature (docs/protocol.md §10). Policy here; the transport and
 * the unverified first TLS contact are injected by the runtime.
 *
 * @example
 * ```ts ignore
 * import { pinnedHostCas } from "./mod.ts";
 * const pems = await pinnedHostCas(baseUrl, pins, storage, fetchUnverified);
 * ```
 *
 * @module
 */
export { parseHttpResponse } from "./http_response.ts";
export {
  checkCaFile,
  type FirstContact,
  type FirstContactResult,
  HOST_CA_PATH,
  learnPinnedCa,
  pinnedHostCas,
} from "./pinned_ca.ts";
export { learnCrossSignedCa } from "./cross_signed.ts";
export {
  CROSS_SIGNED_HEAL_WINDOW_MS,
  hostCaText,
  HostTrust,
  type HostTrustOptions,
  readHostCas,
  readTrustBundle,
  type ReceivedTrustBundle,
  splitPems,
  trustBundleFiles,
  trustsRuntimeRoots,
} from "./host_trust.ts";
