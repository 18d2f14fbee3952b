/**
 * Calls a runner's jobs make signed with the bot's certificate (an output's
 * write, a heartbeat), and what a `CA_KEY_DROPPED` answer to one does: the
 * certificate is given up and the renewal made due now.
 *
 * @module
 */
import { isKeyboundError, KeyboundError } from "../../errors.ts";
import type { BotIdentity } from "../identity.ts";
import type { IdentitySource } from "./options.ts";

/** Runs `call` signed with the bot's current certificate; `what` names it in errors. */
export type SignedCall = (
  what: string,
  call: (identity: BotIdentity) => Promise<void>,
) => Promise<void>;

/** The current identity; `CONNECTION_FAILED` if there is none to `what` with. */
export function requireIdentity(source: IdentitySource, what: string): BotIdentity {
  const identity = source.identity;
  if (!identity) throw new KeyboundError("CONNECTION_FAILED", `no identity to ${what} with`);
  return identity;
}

/**
 * Runs a call signed with the bot's certificate. `CA_KEY_DROPPED` means a
 * completed CA rotation dropped the key that issued the certificate: the
 * identity is given up and renewed now (a recovery); the call fails and its
 * job retries it with the new identity. Only the identity the call was signed
 * with is given up: outputs run concurrently, and a late refusal of the old
 * certificate must not throw away the one the recovery just obtained (each
 * recovery consumes one of the token's limit).
 *
 * @param source the identity the calls are signed with
 * @param renewalDueNow makes the renewal due now, unless one is in flight
 */
export function signedCall(
  source: IdentitySource,
  renewalDueNow: () => Promise<void>,
): SignedCall {
  return async (what, call) => {
    const used = requireIdentity(source, what);
    try {
      await call(used);
    } catch (e) {
      if (
        isKeyboundError(e, "CA_KEY_DROPPED") && source.dropCertificate &&
        source.identity === used
      ) {
        source.dropCertificate(e.message);
        await renewalDueNow();
      }
      throw e;
    }
  };
}
