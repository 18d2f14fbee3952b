/**
 * The interface every output type implements. One file per output type in
 * this folder; `mod.ts` builds them from the configuration.
 *
 * @module
 */
import type { BotIdentity } from "../identity.ts";

/** Something that renders the bot's identity into a destination. */
export interface Output {
  /** The service name (`/readyz/{name}`, logs). */
  readonly name: string;
  /** The configured `type`. */
  readonly type: string;
  /** Where it writes, for logs. */
  describe(): string;
  /** Prepares the destination (creates the directory). */
  init(): Promise<void>;
  /** Writes the files for `identity`. */
  write(identity: BotIdentity): Promise<void>;
  /**
   * The output's own `renewal_interval` in milliseconds, when it overrides the
   * bot's: it then renews on its own schedule instead of after each identity renewal.
   */
  readonly renewalInterval?: number;
}
