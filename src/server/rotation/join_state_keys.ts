/**
 * The keys that verify a join state. Every trusted `bound_keypair` key, and
 * for {@linkcode DROPPED_JOIN_STATE_MS} after a rotation dropped it, the
 * dropped key too: a bot that slept through a whole `bound_keypair` rotation
 * holds a join state only that key signed, and without it could neither
 * refresh nor recover. What such a state proves is checked against the
 * token's stored status anyway (recovery sequence and bound instance must
 * match exactly), and the join issues a fresh state under the current key
 * (docs/security.md, "CA rotation").
 *
 * @module
 */
import { algOf } from "../../crypto/keys.ts";
import type { JoinStateVerificationKey } from "../../protocol/join_state.ts";
import type { ServerContext } from "../context.ts";
import { CROSS_SIGNED_RETENTION_MS } from "./phases.ts";

/** How long after a rotation a join state of the dropped key still verifies. */
export const DROPPED_JOIN_STATE_MS = CROSS_SIGNED_RETENTION_MS;

/** Trusted keys first, then recently dropped ones; `dropped` names the latter's ids. */
export function joinStateKeys(
  ctx: ServerContext,
): { keys: JoinStateVerificationKey[]; dropped: Set<string> } {
  const ca = ctx.cas.boundKeypair;
  const keys: JoinStateVerificationKey[] = [...(ca.jwt ?? [])];
  const dropped = new Set<string>();
  const now = ctx.now().getTime();
  for (const d of ca.dropped) {
    if (!d.kid || !d.jwtPublicKey) continue;
    if (now - Date.parse(d.droppedAt) > DROPPED_JOIN_STATE_MS) continue;
    keys.push({ kid: d.kid, keyPair: { publicKey: d.jwtPublicKey, alg: algOf(d.jwtPublicKey) } });
    dropped.add(d.kid);
  }
  return { keys, dropped };
}
