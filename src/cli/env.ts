/**
 * Environment variables that decide something, read under a narrowed
 * permission. A runtime (Deno's `--allow-env=A,B`) may refuse to read a
 * variable; taken for unset, such a variable would silently change what the
 * program trusts or does (tbot's KEK, tctl's auth server). Shared by tbot and
 * tctl.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";

/** How a command reads its environment. */
export interface EnvReader {
  /** An environment variable; undefined when unset or when this process may not read it. */
  env(name: string): string | undefined;
  /**
   * Why this process may not read variable `name` (`why`, naming the flag),
   * and whether a flag denies it outright (`denied`: no allow-list can then
   * let it); undefined when it may. See {@linkcode decidingEnv}. Absent:
   * every variable is readable.
   */
  unreadableEnv?(name: string): UnreadableEnv | undefined;
}

/** Why a variable may not be read: {@linkcode EnvReader.unreadableEnv}. */
export interface UnreadableEnv {
  /** "tbot may not read X: its --allow-env does not name it". */
  why: string;
  /** A deny flag names it (`--deny-env=X`): it overrides every allow. */
  denied: boolean;
}

/** What {@linkcode decidingEnv} says about a variable. */
export interface DecidingVariable {
  /** What it decides, e.g. "whether private keys are sealed". */
  decides: string;
  /** The variables to allow together with it (they may stay unset). */
  allow: readonly string[];
  /** The other way to configure it, e.g. "set storage.kek_path"; absent when there is none. */
  instead?: string;
}

/**
 * Variable `name`, for a variable whose absence weakens security or changes
 * which credential, configuration or program is used: one this process may
 * not read is an error (`CONFIG_INVALID`, `details.env_not_readable`) naming
 * it and the flag, never "unset".
 */
export function decidingEnv(
  reader: EnvReader,
  name: string,
  about: DecidingVariable,
): string | undefined {
  const unreadable = reader.unreadableEnv?.(name);
  if (unreadable === undefined) return reader.env(name);
  const names = about.allow.join(",");
  // A deny wins over every allow: only taking it out of the deny flag helps.
  const remedy = unreadable.denied
    ? `take ${name} out of --deny-env`
    : `allow ${names} (--allow-env=${names},…; ${
      about.allow.length > 1 ? "they" : "it"
    } may stay unset)`;
  throw new ConfigError(
    `${unreadable.why}, and it decides ${about.decides}: ${remedy}` +
      (about.instead === undefined ? "" : ` or ${about.instead}`),
    { details: { env_not_readable: name } },
  );
}
