/**
 * The Worker bot's configuration, read from its bindings (vars and secrets)
 * and checked once, with errors naming the binding.
 *
 * @module
 */
import { ConfigError } from "../../src/errors.ts";
import { parseDuration } from "../../src/util/duration.ts";
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

/** The checked configuration. */
export interface BotConfig {
  /** Auth service base URL. */
  authServer: string;
  /** Join token name. */
  tokenName: string;
  /** Registration secret, if any. */
  registrationSecret?: string;
  /** Requested certificate lifetime, ms. */
  credentialTtlMs: number;
  /** Renewal interval, ms. */
  renewalIntervalMs: number;
  /** Workload identity for JWT-SVIDs, if configured. */
  workloadIdentity?: string;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function duration(
  env: BotEnv,
  name: "TBOT_CREDENTIAL_TTL" | "TBOT_RENEWAL_INTERVAL",
  dflt: string,
) {
  const text = env[name] ?? dflt;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new ConfigError(`${name} "${text}" is not a duration (examples: 90s, 20m, 1h)`);
  }
  if (ms < 1000) throw new ConfigError(`${name} must be at least 1s, got "${text}"`);
  return ms;
}

/** Reads and checks the bot's bindings; throws `ConfigError` naming the binding. */
export function botConfig(env: BotEnv): BotConfig {
  if (!env.TBOT_TOKEN) throw new ConfigError("TBOT_TOKEN (the join token name) is not set");
  let url: URL;
  try {
    url = new URL(env.AUTH_SERVER ?? "");
  } catch {
    throw new ConfigError(`AUTH_SERVER "${env.AUTH_SERVER ?? ""}" is not a URL`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.has(url.hostname))) {
    throw new ConfigError("AUTH_SERVER must be an https:// URL (http:// only on loopback)");
  }
  const credentialTtlMs = duration(env, "TBOT_CREDENTIAL_TTL", "1h");
  const renewalIntervalMs = duration(env, "TBOT_RENEWAL_INTERVAL", "20m");
  if (renewalIntervalMs >= credentialTtlMs) {
    throw new ConfigError("TBOT_RENEWAL_INTERVAL must be shorter than TBOT_CREDENTIAL_TTL");
  }
  return {
    authServer: url.origin,
    tokenName: env.TBOT_TOKEN,
    ...(env.TBOT_REGISTRATION_SECRET ? { registrationSecret: env.TBOT_REGISTRATION_SECRET } : {}),
    credentialTtlMs,
    renewalIntervalMs,
    ...(env.TBOT_WORKLOAD_IDENTITY ? { workloadIdentity: env.TBOT_WORKLOAD_IDENTITY } : {}),
  };
}
