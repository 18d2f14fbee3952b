/**
 * The Worker bot's configuration, read from its bindings (vars and secrets)
 * and checked once, with errors naming the binding.
 *
 * @module
 */
import { parseServerAddress, type TbotConfig } from "../../src/agent/config/schema.ts";
import { configFromObject } from "../../src/agent/config/validate.ts";
import { ConfigError } from "../../src/errors.ts";
import type { BotIdentityRpc } from "./bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "./types.ts";

/** A service binding (another Worker reached without the public internet). */
export interface ServiceBinding {
  /** Sends a request to the bound Worker. */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
}

/** The bot Worker's bindings. */
export interface BotEnv {
  /** The BotIdentity Durable Object namespace (SQLite-backed). */
  BOT_IDENTITY: DurableObjectNamespace<BotIdentityRpc>;
  /** Auth service URL, `https://…` (plain `http://` only for loopback, in tests). */
  AUTH_SERVER: string;
  /** Optional service binding to the auth Worker; used instead of the public URL. */
  AUTH?: ServiceBinding;
  /** Join token name. */
  TBOT_TOKEN: string;
  /** Registration secret for the first join (a Worker secret). */
  TBOT_REGISTRATION_SECRET?: string;
  /** Key-encryption key sealing the bot's private keys (a Worker secret; 32 bytes, hex or base64). */
  TBOT_STORAGE_KEK?: string;
  /** Certificate lifetime to request (Go duration, default 1h). */
  TBOT_CREDENTIAL_TTL?: string;
  /** Time between renewals (Go duration, default 20m; less than the lifetime). */
  TBOT_RENEWAL_INTERVAL?: string;
  /** `workload_identity` resource for JWT-SVIDs. */
  TBOT_WORKLOAD_IDENTITY?: string;
  /** Bearer token guarding the credential routes of the bot Worker (a Worker secret). */
  BOT_API_TOKEN?: string;
  /** `text` (default) or `json` log lines. */
  LOG_FORMAT?: string;
}

/** The checked configuration: the agent's config plus what only the Worker bot has. */
export interface BotConfig {
  /** The same configuration tbot runs with, validated by the same schema and rules. */
  agent: TbotConfig;
  /** Auth service base URL. */
  authServer: string;
  /** Join token name. */
  tokenName: string;
  /** Workload identity for JWT-SVIDs, if configured. */
  workloadIdentity?: string;
}

/** The binding each config field comes from, for errors. */
const BINDINGS: Record<string, keyof BotEnv> = {
  "auth_server": "AUTH_SERVER",
  "insecure": "AUTH_SERVER",
  "onboarding.token": "TBOT_TOKEN",
  "onboarding.bound_keypair.registration_secret": "TBOT_REGISTRATION_SECRET",
  "credential_ttl": "TBOT_CREDENTIAL_TTL",
  "renewal_interval": "TBOT_RENEWAL_INTERVAL",
};

/**
 * Maps the bot's bindings into the agent's config schema (the one
 * `tbot.yaml` is read with: same defaults, same rule that plain `http://`
 * is for loopback only); throws `ConfigError` naming the binding.
 */
export function botConfig(env: BotEnv): BotConfig {
  const server = env.AUTH_SERVER ?? "";
  const agent = configFromObject({
    version: "v2",
    auth_server: server,
    // A Worker cannot skip certificate checks; `insecure` only admits http:// on loopback.
    insecure: /^http:\/\//i.test(server),
    onboarding: {
      join_method: "bound_keypair",
      token: env.TBOT_TOKEN,
      bound_keypair: env.TBOT_REGISTRATION_SECRET
        ? { registration_secret: env.TBOT_REGISTRATION_SECRET }
        : {},
    },
    storage: { type: "memory" },
    ...(env.TBOT_CREDENTIAL_TTL === undefined ? {} : { credential_ttl: env.TBOT_CREDENTIAL_TTL }),
    ...(env.TBOT_RENEWAL_INTERVAL === undefined
      ? {}
      : { renewal_interval: env.TBOT_RENEWAL_INTERVAL }),
  }, (path) => BINDINGS[path.join(".")] ?? path.join("."));
  // A Worker's warnings reach nobody: certificates expiring between renewals are refused here.
  if (agent.renewal_interval >= agent.credential_ttl) {
    throw new ConfigError("TBOT_RENEWAL_INTERVAL must be shorter than TBOT_CREDENTIAL_TTL");
  }
  return {
    agent,
    authServer: parseServerAddress(server).baseUrl,
    tokenName: agent.onboarding.token,
    ...(env.TBOT_WORKLOAD_IDENTITY ? { workloadIdentity: env.TBOT_WORKLOAD_IDENTITY } : {}),
  };
}
