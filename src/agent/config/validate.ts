/**
 * Validation shared by every source of agent configuration (a `tbot.yaml`
 * file, a Worker's bindings): the zod schema, the defaults that span fields
 * and the cross-field rules, without the YAML parser.
 *
 * @module
 */
import type * as z from "zod";
import { ConfigError } from "../../errors.ts";
import { parseDuration } from "../../util/duration.ts";
import { fieldIssue, formatPath } from "../../util/zod_error.ts";
import {
  checkConfig,
  type ConfigProblem,
  DEFAULT_CREDENTIAL_TTL,
  type TbotConfig,
  TbotConfigSchema,
} from "./schema.ts";

/** A field path: keys and list indexes. */
export type ConfigPath = (string | number)[];

/**
 * The {@linkcode ConfigError} for a field: `invalid config SOURCE[:LINE]: PATH: MESSAGE`;
 * for an unknown key the path names the object it sits in (the message names the key).
 */
export function configError(
  source: string,
  line: number | undefined,
  path: ConfigPath,
  message: string,
  unknownKey = false,
): ConfigError {
  const where = line === undefined ? source : `${source}:${line}`;
  const shown = unknownKey ? path.slice(0, -1) : path;
  const field = shown.length ? `${formatPath(shown)}: ` : "";
  return new ConfigError(`invalid config ${where}: ${field}${message}`, {
    details: { path: formatPath(path), ...(line === undefined ? {} : { line }) },
  });
}

/**
 * Throws the first cross-field problem as a {@linkcode ConfigError}; `source`
 * names where the values came from (a file, or command-line flags).
 */
export function throwProblems(
  problems: ConfigProblem[],
  source: string,
  lineFor?: (p: ConfigPath) => number | undefined,
): void {
  const p = problems[0];
  if (p) throw configError(source, lineFor?.(p.path), p.path, p.message);
}

/** The issue to report of a failed parse: a misspelt key first, it is usually the real news. */
export function firstIssue(error: z.ZodError): z.core.$ZodIssue {
  return error.issues.find((i) => i.code === "unrecognized_keys") ?? error.issues[0];
}

/**
 * Merges `outputs` and `services` (outputs first) and applies defaults that
 * depend on more than one field.
 */
export function finish(file: z.infer<typeof TbotConfigSchema>): TbotConfig {
  const { outputs, services, certificate_ttl, credential_ttl, ...rest } = file;
  return {
    ...rest,
    services: [...(outputs ?? []), ...(services ?? [])],
    credential_ttl: credential_ttl ?? certificate_ttl ?? parseDuration(DEFAULT_CREDENTIAL_TTL),
  };
}

/**
 * Validates a configuration given as an object in `tbot.yaml`'s shape (the
 * Worker bot maps its bindings into one), with the same schema, defaults and
 * cross-field rules as the file. `name` says what a field is called where
 * the values came from; errors are `ConfigError`s naming it.
 *
 * @example
 * ```ts
 * const config = configFromObject({
 *   version: "v2",
 *   auth_server: "auth.example.com:443",
 *   onboarding: { join_method: "bound_keypair", token: "bot" },
 * }, (path) => path.join("."));
 * config.renewal_interval; // 1_200_000
 * ```
 */
export function configFromObject(raw: unknown, name: (path: ConfigPath) => string): TbotConfig {
  const fail = (path: ConfigPath, message: string) =>
    new ConfigError(`${name(path)}: ${message}`, { details: { path: formatPath(path) } });
  const parsed = TbotConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const f = fieldIssue(firstIssue(parsed.error), { zodWording: true });
    throw fail(f.path, f.message);
  }
  const config = finish(parsed.data);
  const problem = checkConfig(config)[0];
  if (problem) throw fail(problem.path, problem.message);
  return config;
}
