/**
 * How the agent trusts the auth service when it pins the host CA: policy
 * here, the unverified first TLS contact injected by the runtime.
 *
 * @example
 * ```ts ignore
 * import { pinnedHostCa } from "./mod.ts";
 * const pem = await pinnedHostCa(baseUrl, pins, storage, fetchUnverified);
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
  pinnedHostCa,
} from "./pinned_ca.ts";
