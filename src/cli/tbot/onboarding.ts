/**
 * Resolves the onboarding secrets and the token the way Teleport does:
 * registration secret from `registration_secret_path`, then
 * `registration_secret`, then `TBOT_REGISTRATION_SECRET`; static key from
 * `static_private_key_path`, then `TBOT_BOUND_KEYPAIR_STATIC_KEY` (base64 of
 * the PEM); a token given as an absolute path is read from that file.
 *
 * @module
 */
import type { TbotConfig } from "../../agent/config/schema.ts";
import { ConfigError } from "../../errors.ts";
import { fromBase64, fromUtf8 } from "../../util/encoding.ts";
import type { Logger } from "../../util/log.ts";
import { decidingEnv, type DecidingVariable } from "../env.ts";
import type { TbotPlatform } from "./platform.ts";

/** Environment variable holding a registration secret. */
export const ENV_REGISTRATION_SECRET = "TBOT_REGISTRATION_SECRET";
/** Environment variable holding base64 of a static private key PEM. */
export const ENV_STATIC_KEY = "TBOT_BOUND_KEYPAIR_STATIC_KEY";

/**
 * The onboarding credentials' variables: one outside a narrowed --allow-env
 * taken for unset would silently swap the key that proves the bot (the one
 * in storage, or a new one) or drop the secret.
 */
const CREDENTIAL_VARIABLES: DecidingVariable = {
  decides: "which credential the bot joins with",
  allow: [ENV_STATIC_KEY, ENV_REGISTRATION_SECRET],
  instead: "set onboarding.bound_keypair.static_private_key_path / registration_secret_path",
};

/** Secrets and names the join needs, resolved. Never log these. */
export interface ResolvedOnboarding {
  /** Join token name. */
  tokenName: string;
  /** Registration secret, if any. */
  registrationSecret?: string;
  /** Static private key, PKCS#8 PEM, if any. */
  staticKeyPem?: string;
}

/** Resolves token, registration secret and static key. */
export async function resolveOnboarding(
  config: TbotConfig,
  platform: Pick<TbotPlatform, "env" | "unreadableEnv" | "readTextFile">,
  log: Logger,
): Promise<ResolvedOnboarding> {
  const bk = config.onboarding.bound_keypair;
  let tokenName = config.onboarding.token;
  if (tokenName.startsWith("/")) {
    tokenName = (await platform.readTextFile(tokenName)).trim();
    if (!tokenName) {
      throw new ConfigError(`onboarding.token: the file ${config.onboarding.token} is empty`);
    }
  }

  // Read only to warn that it is ignored: unreadable is as good as unset there.
  const envSecret = platform.env(ENV_REGISTRATION_SECRET) || undefined;
  let registrationSecret: string | undefined;
  if (bk.registration_secret_path) {
    if (envSecret) {
      log.warn(`${ENV_REGISTRATION_SECRET} is ignored: registration_secret_path is set`);
    }
    registrationSecret = (await platform.readTextFile(bk.registration_secret_path)).trim();
    if (!registrationSecret) {
      throw new ConfigError(
        `onboarding.bound_keypair.registration_secret_path: the file ${bk.registration_secret_path} is empty`,
      );
    }
  } else if (bk.registration_secret) {
    if (envSecret) log.warn(`${ENV_REGISTRATION_SECRET} is ignored: registration_secret is set`);
    registrationSecret = bk.registration_secret;
  } else {
    registrationSecret = decidingEnv(platform, ENV_REGISTRATION_SECRET, CREDENTIAL_VARIABLES) ||
      undefined;
  }

  let staticKeyPem: string | undefined;
  if (bk.static_private_key_path) {
    staticKeyPem = await platform.readTextFile(bk.static_private_key_path);
  } else {
    const envKey = decidingEnv(platform, ENV_STATIC_KEY, CREDENTIAL_VARIABLES);
    if (envKey) {
      try {
        staticKeyPem = fromUtf8(fromBase64(envKey));
      } catch {
        log.warn(
          `${ENV_STATIC_KEY} is not base64 of a PEM key; ignoring it and using the key in storage`,
        );
      }
    }
  }
  if (staticKeyPem && registrationSecret) {
    log.warn(
      "a registration secret is configured but a static key is in use; the secret is not sent",
    );
    registrationSecret = undefined;
  }
  return { tokenName, registrationSecret, staticKeyPem };
}
