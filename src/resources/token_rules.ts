/**
 * Server-side rules for writing a `bound_keypair` token: semantic validation
 * beyond the schema, keeping the stored status on re-apply, and filling the
 * registration secret (docs: teleport-bound-keypair.md §1.3).
 *
 * @module
 */
import { BadParameterError, type KeyboundError } from "../errors.ts";
import { randomHex } from "../crypto/random.ts";
import { parseAuthorizedKey } from "../crypto/ssh_wire.ts";
import type { BoundKeypairSpec, BoundKeypairStatus, Token } from "./schemas.ts";

/** Bytes of a generated registration secret (Teleport's `defaults.TokenLenBytes`). */
export const REGISTRATION_SECRET_BYTES = 16;

/** Produces a new registration secret; injectable for tests. */
export type SecretGenerator = () => string;

/** 16 random bytes, lowercase hex (32 characters). */
export function generateRegistrationSecret(): string {
  return randomHex(REGISTRATION_SECRET_BYTES);
}

async function checkAuthorizedKey(value: string | undefined, path: string): Promise<void> {
  if (!value) return;
  try {
    await parseAuthorizedKey(value);
  } catch (e) {
    throw new BadParameterError(`${path}: ${(e as KeyboundError).message}`, {
      details: { path },
    });
  }
}

/**
 * Checks what the schema cannot: public keys must parse as authorized_keys
 * lines of a supported type. (The bot named by `bot_name` need not exist yet,
 * as in Teleport.)
 */
export async function validateTokenSemantics(token: Token): Promise<void> {
  await checkAuthorizedKey(
    token.spec.bound_keypair.onboarding.initial_public_key,
    "spec.bound_keypair.onboarding.initial_public_key",
  );
  await checkAuthorizedKey(
    token.status?.bound_keypair?.bound_public_key,
    "status.bound_keypair.bound_public_key",
  );
}

/**
 * Status preservation (an improvement on Teleport issue #68211): a token sent
 * without `status` keeps the stored status, so re-applying the original YAML
 * does not unbind the bot; an explicit `status` is an admin's deliberate
 * edit (say, resetting `recovery_count`) and replaces it.
 */
export function mergeTokenStatus(incoming: Token, existing: Token | null): Token {
  if (incoming.status !== undefined || !existing?.status) return incoming;
  return { ...incoming, status: structuredClone(existing.status) };
}

/**
 * Registration-secret filling, in Teleport's order: ensure the status exists;
 * stop if a key is bound or pre-registered; keep an existing secret; else copy
 * the admin's `onboarding.registration_secret`; else generate one.
 */
export function fillRegistrationSecret(
  token: Token,
  generate: SecretGenerator = generateRegistrationSecret,
): Token {
  const status: BoundKeypairStatus = token.status?.bound_keypair
    ? { ...token.status.bound_keypair }
    : { recovery_count: 0 };
  const onboarding = token.spec.bound_keypair.onboarding ?? {};
  const out: Token = {
    ...token,
    spec: { ...token.spec, bound_keypair: { ...token.spec.bound_keypair, onboarding } },
    status: { ...token.status, bound_keypair: status },
  };
  if (status.bound_public_key || onboarding.initial_public_key) return out;
  if (status.registration_secret) return out;
  status.registration_secret = onboarding.registration_secret || generate();
  return out;
}

/**
 * Everything the server does to a token before storing it: validate, keep the
 * stored status unless one was sent, fill the registration secret.
 */
export async function prepareTokenForWrite(
  incoming: Token,
  existing: Token | null,
  generate: SecretGenerator = generateRegistrationSecret,
): Promise<Token> {
  await validateTokenSemantics(incoming);
  return fillRegistrationSecret(mergeTokenStatus(incoming, existing), generate);
}

/**
 * A `bound_keypair` join token for bot `botName`: the one place that writes
 * the token's fixed fields (`roles: [Bot]`, `join_method: bound_keypair`).
 *
 * @example
 * ```ts
 * import { boundKeypairToken } from "./token_rules.ts";
 * const token = boundKeypairToken("ci", "ci", { onboarding: {}, recovery: { limit: 1, mode: "" } });
 * token.spec.join_method; // "bound_keypair"
 * ```
 */
export function boundKeypairToken(
  name: string,
  botName: string,
  boundKeypair: BoundKeypairSpec,
): Token {
  return {
    kind: "token",
    version: "v2",
    metadata: { name },
    spec: {
      roles: ["Bot"],
      bot_name: botName,
      join_method: "bound_keypair",
      bound_keypair: boundKeypair,
    },
  };
}
