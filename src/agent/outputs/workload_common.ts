/**
 * What the outputs that ask the auth service for extra credentials
 * (`ssh_host`, `workload-identity-x509`, `workload-identity-jwt`) share:
 * their options and the lifetime they request.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import type { BotApi } from "../bot_api.ts";
import type { BotIdentity } from "../identity.ts";
import type { AgentStorage } from "../storage.ts";
import type { Output } from "./output.ts";

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

/**
 * Base of the outputs that ask the auth service for credentials of their own:
 * the service name, the optional own renewal interval and the destination
 * check. Subclasses only say what to request and which files to write.
 */
export abstract class IssuingOutput implements Output {
  /** The configured `type`. */
  abstract readonly type: string;
  /** The service name (`/readyz/{name}`, logs). */
  readonly name: string;
  /** The output's own renewal interval, if it overrides the bot's. */
  readonly renewalInterval?: number;
  /** Destination, API and requested lifetime. */
  protected readonly options: IssuingOutputOptions;

  /**
   * Creates the output.
   *
   * @param o destination, API and lifetime
   */
  constructor(o: IssuingOutputOptions) {
    this.name = o.name;
    this.renewalInterval = o.renewalIntervalMs;
    this.options = o;
  }

  /** Where it writes, for logs. */
  describe(): string {
    return this.options.destination.describe();
  }

  /** Prepares the destination; refuses one that cannot be written. */
  init(): Promise<void> {
    return initDestination(this.options.destination, this.options.configPath);
  }

  /** Requests the credentials as `identity` and writes them. */
  abstract write(identity: BotIdentity): Promise<void>;
}
