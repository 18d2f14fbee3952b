/**
 * What the outputs that ask the auth service for extra credentials
 * (`ssh_host`, `workload-identity-x509`, `workload-identity-jwt`) share:
 * their options and the lifetime they request.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import type { BotApi } from "../bot_api.ts";
import type { AgentStorage } from "../storage.ts";

/** Options every credential-issuing output takes. */
export interface IssuingOutputOptions {
  /** Service name (`/readyz/{name}`, logs). */
  name: string;
  /** Where the files go. */
  destination: AgentStorage;
  /** The auth service. */
  api: BotApi;
  /** Requested credential lifetime: the output's `credential_ttl`, else the bot's. */
  credentialTtlMs: number;
  /** The output's own `renewal_interval`, when it overrides the bot's. */
  renewalIntervalMs?: number;
  /** Config field of the destination, for errors (`services[2].destination.path`). */
  configPath: string;
}

/** Whole seconds for `ttl_seconds`, at least one. */
export function ttlSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Prepares a destination before any join, and refuses one that cannot be
 * written with a {@linkcode ConfigError} naming the config field.
 */
export async function initDestination(
  destination: AgentStorage,
  configPath: string,
): Promise<void> {
  try {
    await destination.init();
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(`${configPath}: ${destination.describe()} cannot be written: ${why}`, {
      cause,
      details: { path: configPath },
    });
  }
}
