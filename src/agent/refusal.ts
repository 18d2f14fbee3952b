/**
 * Turns a failed join into one log line that says what happened and what an
 * admin can do about it. The server's message is included (it is safe by
 * contract); the advice is keyed by the stable error code.
 *
 * @module
 */
import { type ErrorCode, isKeyboundError } from "../errors.ts";
import type { UnexpectedAnswerDetails } from "../protocol/http_client.ts";

/** Facts the advice may mention. */
export interface RefusalContext {
  /** The join token name. */
  tokenName: string;
  /** The auth service address. */
  server: string;
  /** True when joining with a static key. */
  staticKey: boolean;
}

function advice(
  code: ErrorCode,
  c: RefusalContext,
  details: Record<string, unknown> = {},
): string | undefined {
  const token = `token/${c.tokenName}`;
  switch (code) {
    case "NO_RECOVERIES_REMAINING":
      return `an admin can allow another recovery by raising spec.bound_keypair.recovery.limit on ${token} ` +
        `(tctl edit ${token}, or tctl create -f with a higher limit); this bot then recovers on its ` +
        `next attempt with no change on this host`;
    case "LOCKED":
      return `a lock targets this bot, its instance or its join token; inspect with \`tctl get locks\` ` +
        `and, once the cause is understood, remove it with \`tctl rm lock/NAME\``;
    case "JOIN_STATE_REQUIRED":
      return c.staticKey
        ? `static keys never send a join state, so ${token} needs spec.bound_keypair.recovery.mode: insecure`
        : `this host has no join state (bkp_state) although the token was used before; restore the ` +
          `storage directory, or have an admin reset status.bound_keypair on ${token}`;
    case "JOIN_STATE_INVALID":
      return `the join state did not verify: this keypair was probably copied to another host, and the ` +
        `token is now locked; investigate (see docs/security.md), then remove the lock ` +
        `(\`tctl get locks\`, \`tctl rm lock/NAME\`) and re-onboard the legitimate host`;
    case "GENERATION_MISMATCH":
      return `this bot's certificates were used from two places (generation counter mismatch) and the ` +
        `token is now locked; investigate (see docs/security.md), then remove the lock with ` +
        `\`tctl rm lock/NAME\` and re-onboard the legitimate host`;
    case "REGISTRATION_SECRET_INVALID":
      return `the registration secret is missing, wrong, already used, or past must_register_before; ` +
        `read the current one with \`tctl get ${token}\` (status.bound_keypair.registration_secret), ` +
        `or preregister a key made with \`tbot keypair create\``;
    case "ACCESS_DENIED":
      return `check that ${token} exists, is a bound_keypair token for this bot and has not expired ` +
        `(\`tctl get ${token}\`)`;
    case "CHALLENGE_FAILED":
      return `the bound key did not pass the server's challenge; check the host clock and that ` +
        `${token} is bound to this host's key (id_bkp.pub)`;
    case "UNAUTHENTICATED":
      return `the server did not accept this bot's certificate; check the host clock, or delete the ` +
        `identity files (tlscert, key) from storage so the bot recovers with its bound key`;
    case "UNEXPECTED_BACKEND_STATE":
      return `another join of ${token} won at the same moment; is this keypair in use on another host?`;
    case "TOKEN_STATE_CORRUPT":
      return `an admin must delete and recreate ${token}`;
    case "ONBOARDING_WITH_CREDENTIALS":
      return `the token has no bound key yet; delete the identity files (tlscert, key) from storage`;
    case "STATIC_KEY_ROTATION":
      return `unset spec.bound_keypair.rotate_after on ${token}`;
    case "TLS_UNTRUSTED":
      return `the server's TLS certificate is not trusted: set onboarding.ca_pins to the CA pin ` +
        `\`tctl status\` prints, or onboarding.ca_path to the cluster's host CA certificate`;
    case "BAD_SERVER_RESPONSE":
      return `the auth service at ${c.server} (or a proxy in front of it) sent an answer this bot ` +
        `cannot use; the bot keeps its keys and retries (a committed join is resumed, not ` +
        `repeated); check that tbot and the auth service are of matching versions`;
    case "CONNECTION_FAILED":
    case "CONNECTION_RESET_BEFORE_SEND": {
      // An answer came, but not one this bot can use: told apart by details, not words.
      const answer: UnexpectedAnswerDetails = details;
      if (typeof answer.answer_schema_mismatch === "string") {
        return `the auth service at ${c.server} answered, but its field ` +
          `${answer.answer_schema_mismatch} is not what this tbot reads: tbot and the auth ` +
          `service are of different versions; upgrade the older one (the bot keeps its keys ` +
          `and retries)`;
      }
      if (answer.answer_not_json === true) {
        return `something answered at ${c.server}, but not with JSON: check that auth_server ` +
          `names the auth service, not a proxy or another service`;
      }
      return `check that the auth service at ${c.server} is running and reachable`;
    }
    default:
      return undefined;
  }
}

/** One line: what the server said, its code, and what an admin can do. */
export function describeJoinFailure(err: unknown, c: RefusalContext): string {
  if (!isKeyboundError(err)) {
    const msg = err instanceof Error ? err.message : String(err);
    return `cannot join via ${c.server}: ${msg}; check that the auth service is running and reachable`;
  }
  const message = err.message;
  const tip = advice(err.code, c, err.details);
  const verb = err.status === 401 || err.status === 403 ? "join refused" : "join failed";
  return `${verb}: ${message} (${err.code})${tip ? `; ${tip}` : ""}`;
}
