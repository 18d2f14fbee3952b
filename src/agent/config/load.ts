/**
 * Reading `tbot.yaml`: YAML parsing with the `yaml` package, validation with
 * the zod schema, and errors that name the file, the line and the field path
 * (`tbot.yaml:7: onboarding.bound_keypair: unknown field "registration_secrett"`).
 *
 * @module
 */
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../../errors.ts";
import { fieldIssue, formatPath } from "../../util/zod_error.ts";
import { yamlErrorText, yamlLineOf } from "../../util/yaml_line.ts";
import { checkConfig, type ConfigProblem, type TbotConfig, TbotConfigSchema } from "./schema.ts";
import { type ConfigPath, finish, firstIssue } from "./validate.ts";

export { configFromObject, type ConfigPath } from "./validate.ts";

function configError(
  source: string,
  line: number | undefined,
  path: ConfigPath,
  message: string,
  unknownKey = false,
) {
  const where = line === undefined ? source : `${source}:${line}`;
  // For an unknown key, name the object it sits in; the message names the key.
  const shown = unknownKey ? path.slice(0, -1) : path;
  const field = shown.length ? `${formatPath(shown)}: ` : "";
  return new ConfigError(`invalid config ${where}: ${field}${message}`, {
    details: { path: formatPath(path), ...(line === undefined ? {} : { line }) },
  });
}

/** Maps a path in the merged config back to the file (`services[i]` may be `outputs[i]`). */
function filePath(file: z.infer<typeof TbotConfigSchema>, path: ConfigPath): ConfigPath {
  const outputs = file.outputs?.length ?? 0;
  if (path[0] === "services" && typeof path[1] === "number") {
    return path[1] < outputs
      ? ["outputs", path[1], ...path.slice(2)]
      : ["services", path[1] - outputs, ...path.slice(2)];
  }
  return path;
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

/**
 * Parses and validates a `tbot.yaml` text. `source` names the file in
 * errors. Throws {@linkcode ConfigError} with `details.path` and
 * `details.line`.
 */
export function parseConfig(text: string, source = "tbot.yaml"): TbotConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line;
    throw configError(source, line, [], `YAML syntax error: ${yamlErrorText(e.message)}`);
  }
  const raw = doc.toJS({ maxAliasCount: 50 });
  if (raw === null || raw === undefined) {
    throw configError(source, undefined, [], "the file is empty");
  }
  const parsed = TbotConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const f = fieldIssue(firstIssue(parsed.error), { zodWording: true });
    throw configError(source, yamlLineOf(doc, f.path, lines), f.path, f.message, f.unknownKey);
  }
  const config = finish(parsed.data);
  throwProblems(
    checkConfig(config).map((p) => ({ ...p, path: filePath(parsed.data, p.path) })),
    source,
    (p) => yamlLineOf(doc, p, lines),
  );
  return config;
}
