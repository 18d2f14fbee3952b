/**
 * Bound-keypair join tokens made from tctl flags, and how tctl shows a new
 * one: `bots add`, `tokens add` and `bots instances add` all build the token
 * and print it here, so the three agree on flags, checks and output.
 *
 * @module
 */
import { randomHex } from "../../crypto/random.ts";
import { ENV_REGISTRATION_SECRET } from "../tbot/onboarding.ts";
import { Duration, RecoveryMode, type Token } from "../../resources/schemas.ts";
import { boundKeypairToken } from "../../resources/token_rules.ts";
import { parseResourceOf } from "../../resources/validate.ts";
import { parseDuration } from "../../util/duration.ts";
import type { AdminApi } from "../api_client.ts";
import { type OutputFormat, UsageError } from "./command.ts";
import type { TctlContext } from "./context.ts";
import type { TctlFlags } from "./options.ts";
import { recoverySummary } from "./text.ts";

/** Where the printed tbot command line keeps the bot's state. */
export const SAMPLE_STORAGE = "/var/lib/teleport/bot";

/** A fresh token name: 16 random bytes as hex, as Teleport names generated tokens. */
export function newTokenName(): string {
  return randomHex(16);
}

/**
 * The bound-keypair token `name` for bot `botName` from `--recovery-limit`,
 * `--recovery-mode`, `--initial-public-key`, `--registration-secret` and
 * `--ttl`; a bad value is a {@linkcode UsageError} naming its flag.
 */
export function buildJoinToken(name: string, botName: string, flags: TctlFlags, now: Date): Token {
  const limitText = flags.recoveryLimit;
  const limit = limitText === undefined ? 1 : Number(limitText);
  if (!/^\d+$/.test(limitText ?? "1") || !Number.isSafeInteger(limit) || limit > 0xffff_ffff) {
    throw new UsageError(`--recovery-limit: expected a non-negative integer, got "${limitText}"`);
  }
  const mode = flags.recoveryMode ?? "standard";
  if (!RecoveryMode.safeParse(mode).success || mode === "") {
    throw new UsageError(`--recovery-mode: expected standard, relaxed or insecure, got "${mode}"`);
  }
  const key = flags.initialPublicKey;
  const secret = flags.registrationSecret;
  if (key !== undefined && secret !== undefined) {
    throw new UsageError("--initial-public-key and --registration-secret are mutually exclusive");
  }
  const ttl = flags.ttl;
  if (ttl !== undefined && (!Duration.safeParse(ttl).success || parseDuration(ttl) <= 0)) {
    throw new UsageError(`--ttl: invalid duration "${ttl}" (examples: 30m, 24h)`);
  }
  const token = boundKeypairToken(name, botName, {
    onboarding: {
      ...(key === undefined ? {} : { initial_public_key: key.trim() }),
      ...(secret === undefined ? {} : { registration_secret: secret }),
    },
    recovery: { limit, mode: mode as RecoveryMode },
  });
  if (ttl !== undefined) {
    token.metadata.expires = new Date(now.getTime() + parseDuration(ttl)).toISOString();
  }
  return parseResourceOf("token", token);
}

/** The `auth_server` value tbot needs to reach the same auth service. */
export function tbotAddress(baseUrl: string): string {
  return baseUrl.startsWith("https://") ? baseUrl.slice("https://".length) : baseUrl;
}

/** One word for a POSIX shell: as is when safe, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `tbot start` argv that joins with `token` (without the secret, which
 * goes in the environment so it never shows in `ps`).
 */
export function tbotStartArgs(address: string, token: Token, caPin: string | undefined): string[] {
  return [
    "tbot",
    "start",
    "--auth-server",
    address,
    "--join-method",
    "bound_keypair",
    "--token",
    token.metadata.name,
    ...(caPin ? ["--ca-pin", caPin] : []),
    "--storage",
    SAMPLE_STORAGE,
  ];
}

/** What tctl prints about a new join token, as JSON. */
export interface JoinTokenReport {
  /** The token's name (`--token` of tbot). */
  token_name: string;
  /** The bot it joins as. */
  bot_name: string;
  /** The single-use registration secret (absent with a pre-registered key). */
  registration_secret?: string;
  /** The pre-registered public key (absent on the secret path). */
  initial_public_key?: string;
  /** When the token expires, if it does. */
  expires?: string;
  /** The environment `tbot_start` needs (the secret). */
  tbot_env: Record<string, string>;
  /** A ready `tbot start` argv. */
  tbot_start: string[];
  /** The token as stored. */
  token: Token;
}

/** The report on `token` as created on the auth service behind `api`. */
export async function joinTokenReport(api: AdminApi, token: Token): Promise<JoinTokenReport> {
  const status = await api.status();
  const secret = token.status?.bound_keypair?.registration_secret;
  const key = token.spec.bound_keypair.onboarding.initial_public_key;
  return {
    token_name: token.metadata.name,
    bot_name: token.spec.bot_name,
    ...(key ? { initial_public_key: key } : secret ? { registration_secret: secret } : {}),
    ...(token.metadata.expires ? { expires: token.metadata.expires } : {}),
    tbot_env: !key && secret ? { [ENV_REGISTRATION_SECRET]: secret } : {},
    tbot_start: tbotStartArgs(tbotAddress(api.baseUrl), token, status.ca_pin),
    token,
  };
}

/** The text form of a report: name, secret or key, expiry, and the tbot command line. */
export function joinTokenText(r: JoinTokenReport): string {
  const env = Object.entries(r.tbot_env).map(([k, v]) => `${k}=${shellWord(v)} `).join("");
  return [
    `Join token "${r.token_name}" for bot "${r.bot_name}": bound_keypair, recovery ${
      recoverySummary(r.token)
    }, expires ${r.expires ?? "never"}.`,
    r.initial_public_key
      ? `Pre-registered public key: ${r.initial_public_key}`
      : `Registration secret: ${r.registration_secret ?? "(none)"}`,
    "",
    r.initial_public_key
      ? "On the bot host, with the keypair whose public key you registered " +
        "(--static-key-path FILE), run:"
      : "On the bot host, run (the secret is single-use):",
    "",
    `  ${env}${r.tbot_start.map(shellWord).join(" ")}`,
    "",
  ].join("\n");
}

/** Prints a newly created token as `format` (text or json). */
export async function printJoinToken(
  ctx: TctlContext,
  api: AdminApi,
  token: Token,
  format: OutputFormat,
): Promise<void> {
  const report = await joinTokenReport(api, token);
  ctx.out(format === "json" ? JSON.stringify(report, null, 4) + "\n" : joinTokenText(report));
}
