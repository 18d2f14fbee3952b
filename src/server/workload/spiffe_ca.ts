/**
 * The cluster's SPIFFE X.509 CA, which signs X.509 SVIDs and nothing else.
 *
 * It is separate from the user CA on purpose: the auth service accepts any
 * non-CA certificate of the user CA as a client identity (signed requests),
 * and an SVID handed to a workload must never be usable that way. Workloads
 * in turn trust only this CA, not certificates of the cluster's users.
 *
 * It rotates like every CA (src/server/rotation/); clusters created before
 * workload identity existed get one at their next start (bootstrap.ts).
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { ServerContext, TlsCaKey } from "../context.ts";
import { refreshCas } from "../rotation/cache.ts";

export { SPIFFE_CA_OU } from "../rotation/material.ts";

/** The loaded SPIFFE CA's signing key and certificate. */
export type SpiffeCa = TlsCaKey;

/**
 * The SPIFFE CA key that signs now. The CA state is re-read first: nothing
 * is signed with a key a rotation on another instance just replaced.
 */
export async function spiffeCa(ctx: ServerContext): Promise<SpiffeCa> {
  await refreshCas(ctx, 0);
  const tls = ctx.cas.spiffe.tls;
  if (!tls) throw new KeyboundError("INTERNAL", "spiffe CA has no X.509 key");
  return tls;
}
